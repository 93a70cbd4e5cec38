"""Memory per model reload, in-process (not in CI): the champion loaded by serving.holder.ModelHolder
over and over, each load on the next of --threads threads in turn (as a server worker's thread pool
does), printing this process's resident memory after each load. The first round (one load per
thread) shows what each thread's first load costs (glibc gives a thread its own malloc arena, up
to 8 per core); the rounds after it show what a reload leaves behind once every thread has loaded.

    .venv/bin/python bench/reload_memory.py [--reloads 40] [--threads 8]
    MALLOC_ARENA_MAX=2 .venv/bin/python bench/reload_memory.py      # what `bip serve` sets

Needs a champion (make run). Docs: docs/serving-load.md, "Soak".
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reloads", type=int, default=40)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    from bip.config import get_settings
    from models.scoring import ScoringModel
    from models.store import configure_tracking
    from serving.holder import ModelHolder
    configure_tracking()
    holder = ModelHolder(get_settings().model_uri)
    threads = [ThreadPoolExecutor(1) for _ in range(args.threads)]
    ok, message = holder.load()  # the first load on the main thread, as a worker's start does
    assert ok, message
    gc.collect()
    memory = [rss_mb()]
    print(f"first load (main thread): {memory[0]:.1f} MB; MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', 'unset')}")
    for i in range(args.reloads):
        ok, message = threads[i % args.threads].submit(holder.load).result()
        assert ok, message
        gc.collect()
        memory.append(rss_mb())
        alive = sum(isinstance(o, ScoringModel) for o in gc.get_objects())
        print(f"reload {i + 1:3d} on thread {i % args.threads}: {memory[-1]:.1f} MB, models alive {alive}", flush=True)
    for pool in threads:
        pool.shutdown()
    first_round = memory[min(args.threads, args.reloads)]
    later = args.reloads - args.threads
    print(f"first round ({args.threads} threads' first loads): {first_round - memory[0]:+.1f} MB; "
          + (f"the {later} reloads after it: {memory[-1] - first_round:+.1f} MB "
             f"({(memory[-1] - first_round) / later:+.2f} MB per reload)" if later > 0 else ""))


if __name__ == "__main__":
    main()
