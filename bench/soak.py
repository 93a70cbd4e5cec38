"""Soak test (not in CI): a real `bip serve --workers 2` under 16 clients for a long time, mixing
explained scores with the curve, citizen look-ups and small cohorts (200 persons: answered inline,
under BIP_INLINE_COHORT_CITIZENS, not as jobs), with a champion reload every minute. Prints
per-minute p50/p99 of each kind of call and the workers' resident memory, every error, the p99 of
the last five minutes against the first five (after a minute's warm-up), and the workers' memory
at minute 2 against the end.

    .venv/bin/python bench/soak.py [--minutes 30] [--clients 16] [--persons 2000]

Needs a champion (make run). The citizen source and the cohort calls use a cohort simulated with
--no-truth into data/bench_soak_<persons>. Issue 22's targets: 0 errors, p99 stable within 1.5x,
worker memory flat (<= +10%).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.jobs_under_load import rss_mb, simulate, worker_pids  # noqa: E402
from bench.service import serve, wait_for  # noqa: E402

PORT = 8106
URL = f"http://127.0.0.1:{PORT}"


def worker_rss_mb(master: int) -> float:
    """Resident memory of the server's worker processes (not the supervisor)."""
    import psutil
    return sum(psutil.Process(pid).memory_info().rss for pid in worker_pids(master)) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--reload-every", type=float, default=60)
    args = parser.parse_args()
    cohort = simulate(args.persons, ROOT / "data" / f"bench_soak_{args.persons}")
    var = Path(tempfile.mkdtemp(prefix="bip-soak-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BIP_KEYS_FILE": str(var / "keys.json"),
           "BIP_AUDIT_LOG": str(var / "audit.jsonl"), "BIP_JOBS_DIR": str(var / "jobs"),
           "BIP_RELOAD_INTERVAL_S": "0", "BIP_CITIZEN_SOURCE": str(cohort)}
    from serving.keys import add_key
    keys = {role: add_key(var / "keys.json", role)[1] for role in ("caseworker", "evaluator", "admin")}
    body = json.loads((ROOT / "serving" / "example_citizen.json").read_text())
    import pandas as pd
    persons = pd.read_parquet(cohort / "persons.parquet", columns=["person_id"])["person_id"].astype(str).tolist()
    # a small cohort for the jobs: the first 200 persons' rows
    jobs_dir = var / "cohort"
    jobs_dir.mkdir()
    chosen = set(persons[:200])
    for name in ("persons", "measurements", "activities"):
        table = pd.read_parquet(cohort / f"{name}.parquet")
        table[table["person_id"].astype(str).isin(chosen)].to_parquet(jobs_dir / f"{name}.parquet", index=False)
    job_files = {n: (f"{n}.parquet", (jobs_dir / f"{n}.parquet").read_bytes())
                 for n in ("persons", "measurements", "activities")}

    server = serve(PORT, env)
    calls: list[tuple[float, str, float, bool, str]] = []   # (t, kind, ms, ok, detail)
    lock = threading.Lock()
    stop = threading.Event()
    memory: list[tuple[float, float]] = []
    try:
        wait_for(f"{URL}/ready")
        time.sleep(2)
        start = time.time()

        def record(kind, t, response=None, error=None):
            ok = response is not None and response.status_code in (200, 202)
            detail = error or ("" if ok else f"{response.status_code} {response.text[:200]}")
            with lock:
                calls.append((time.time() - start, kind, 1e3 * (time.perf_counter() - t), ok, detail))

        def client_loop(i):
            rng = random.Random(i)
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    draw = rng.random()
                    t = time.perf_counter()
                    try:
                        if draw < 0.7:
                            kind = "score"
                            response = client.post(f"{URL}/v1/score", json=body,
                                                   headers={"X-API-Key": keys["caseworker"]})
                        elif draw < 0.98:
                            kind = "citizen"
                            response = client.get(f"{URL}/v1/citizens/{rng.choice(persons)}/score",
                                                  headers={"X-API-Key": keys["caseworker"]})
                        else:
                            kind = "cohort_job"
                            response = client.post(f"{URL}/v1/cohorts/score?format=parquet", files=job_files,
                                                   headers={"X-API-Key": keys["evaluator"]})
                            if response.status_code == 429:   # the queue is full: a clear answer, not an error
                                kind = "cohort_job_queue_full"
                                response.status_code = 200
                        record(kind, t, response)
                    except httpx.HTTPError as error:
                        record(kind, t, error=repr(error))

        def reload_loop():
            with httpx.Client(timeout=120) as client:
                while not stop.wait(args.reload_every):
                    t = time.perf_counter()
                    try:
                        record("reload", t, client.post(f"{URL}/v1/admin/reload", headers={"X-API-Key": keys["admin"]}))
                    except httpx.HTTPError as error:
                        record("reload", t, error=repr(error))

        def memory_loop():
            while not stop.wait(10):
                try:
                    memory.append((time.time() - start, worker_rss_mb(server.pid)))
                except Exception:  # noqa: BLE001  (a worker restarting between listing and reading)
                    pass

        threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(args.clients)]
        threads += [threading.Thread(target=reload_loop, daemon=True), threading.Thread(target=memory_loop, daemon=True)]
        pids_before = worker_pids(server.pid)
        for thread in threads:
            thread.start()
        stop.wait(60 * args.minutes)
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
        pids_after = worker_pids(server.pid)
        server_rss = rss_mb(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)

    by_minute = defaultdict(lambda: defaultdict(list))
    errors = [c for c in calls if not c[3]]
    for t, kind, ms, ok, _ in calls:
        if ok:
            by_minute[int(t // 60)][kind].append(ms)
    print(f"bip serve --workers 2, {args.clients} clients, {args.minutes:g} min, reload every {args.reload_every:g} s; "
          f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', 'unset (bip serve sets 2)')}; {os.cpu_count()} cores; {len(calls)} calls, {len(errors)} errors")
    for minute in sorted(by_minute):
        row = by_minute[minute]
        rss = [mb for t, mb in memory if int(t // 60) == minute]
        print(f"minute {minute:3d}: " + "; ".join(
            f"{kind} n={len(v)} p50 {np.percentile(v, 50):.1f} p99 {np.percentile(v, 99):.1f} ms"
            for kind, v in sorted(row.items())) + (f"; workers {rss[-1]:.0f} MB" if rss else ""))
    for e in errors[:20]:
        print("error:", e)
    minutes = sorted(by_minute)
    if len(minutes) >= 3:
        first = [ms for m in minutes[1:6] for ms in by_minute[m]["score"]]
        last = [ms for m in minutes[-5:] for ms in by_minute[m]["score"]]
        p99_first, p99_last = np.percentile(first, 99), np.percentile(last, 99)
        print(f"/v1/score p99: minutes 1-5 {p99_first:.1f} ms, last five {p99_last:.1f} ms: {p99_last / p99_first:.2f}x")
    early = [rss for t, rss in memory if 110 <= t <= 130] or [rss for _, rss in memory[:1]]
    if early:
        base, end = float(np.mean(early)), memory[-1][1]
        print(f"worker memory at minute 2: {base:.0f} MB; at the end: {end:.0f} MB ({100 * (end / base - 1):+.1f}%); "
              f"server with supervisor {server_rss:.0f} MB")
    print(f"workers before {pids_before}, after {pids_after}: {'same' if pids_before == pids_after else 'CHANGED'}")


if __name__ == "__main__":
    main()
