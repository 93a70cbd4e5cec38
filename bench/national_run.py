"""The national pipeline on a local Dask cluster: simulate -> train -> score -> evaluate, with the
wall time and peak memory of every stage (issue 22, item 6).

    OMP_NUM_THREADS=1 .venv/bin/python bench/national_run.py --persons 1000000 [--stages simulate train score evaluate]
        [--workers 2] [--out var/national_run] [--force]

Each stage runs as its own process, as an operator would run it: `bip simulate --no-truth`,
`bip train --promote-if-better` with BIP_DASK_ADDRESS set (every booster fitted by xgboost.dask
on the cluster), `training.distributed.score_on_dask` (every person at the latest measurement,
with explanations, partitions of persons read from the Parquet tables by the workers) and `bip
evaluate --kind all` with BIP_DASK_ADDRESS set (the cross-fits' folds on the cluster). Memory is
sampled from /proc every 0.5 s: the stage's process tree and the cluster's worker processes,
separately and together. The models go to a new MLflow store in the output folder
(`--tracking-uri` for another, e.g. make run's, to score without training).

Sizes are checked before work: a stage whose estimated peak (bytes per person measured on this
project's runs, below) exceeds the memory the machine has free is not started and the reason is
printed (`--force` starts it anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

# Peak resident bytes per simulated person, measured on this project's runs: simulate 1,000,000
# persons --no-truth 18.1 GiB (this bench); bip train 200,000 persons 6.71 GiB (docs/performance.md);
# the national evaluation job 100,000 persons 2.96 GiB (docs/national-scale.md); scoring on the
# cluster 1,000,000 persons 3.0 GiB, driver and workers (this bench: a worker holds one partition).
PEAK_BYTES_PER_PERSON = {"simulate": 19_500, "train": 36_000, "evaluate": 32_000, "score": 3_300}
STAGES = ("simulate", "train", "score", "evaluate")


def _children(pid: int) -> list[int]:
    out = []
    try:
        for child in Path(f"/proc/{pid}/task").iterdir():
            text = (child / "children").read_text().split()
            out += [int(c) for c in text]
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        p = stack.pop()
        pids.append(p)
        stack += _children(p)
    return pids


def _rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Peak(threading.Thread):
    """Peak resident memory of a process tree and of the cluster's workers, sampled every 0.5 s."""

    def __init__(self, pid: int, workers: list[int]):
        super().__init__(daemon=True)
        self.pid, self.workers = pid, workers
        self.stage = self.cluster = self.together = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            stage, cluster = _rss(_tree(self.pid)), _rss([p for w in self.workers for p in _tree(w)])
            self.stage, self.cluster = max(self.stage, stage), max(self.cluster, cluster)
            self.together = max(self.together, stage + cluster)
            self.done.wait(0.5)


def _available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


SCORE = """
import sys
from pathlib import Path
from distributed import Client
from training.distributed import score_on_dask
client = Client(sys.argv[1])
scores = score_on_dask(client, sys.argv[2], sys.argv[3], at="latest", explain=True,
                       partitions=int(sys.argv[4]))
scores.to_parquet(Path(sys.argv[5]) / "scores.parquet", index=False)
print(f"scored {len(scores)} persons")
"""


def run_stage(name: str, command: list[str], env: dict, workers: list[int], log: Path) -> dict:
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        peak = Peak(process.pid, workers)
        peak.start()
        code = process.wait()
        peak.done.set()
        peak.join()
    result = {"stage": name, "exit": code, "wall_s": round(time.perf_counter() - start, 1),
              "peak_stage_gib": round(peak.stage / 2**30, 2), "peak_workers_gib": round(peak.cluster / 2**30, 2),
              "peak_together_gib": round(peak.together / 2**30, 2), "log": str(log)}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes, one thread each")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "national_run")
    parser.add_argument("--force", action="store_true", help="start stages whose estimated memory exceeds the free memory")
    parser.add_argument("--tracking-uri", help="the MLflow store to train into and score from (default: a new one "
                        "in --out); e.g. sqlite:///mlruns/mlflow.db to score with make run's champion without training")
    args = parser.parse_args()
    out = args.out.resolve()
    data = out / f"cohort_{args.persons}"
    out.mkdir(parents=True, exist_ok=True)
    from distributed import LocalCluster

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": args.tracking_uri or f"sqlite:///{out}/mlflow.db",
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "PYTHONPATH": str(ROOT)}
    os.environ.update({k: env[k] for k in ("OMP_NUM_THREADS", "MLFLOW_TRACKING_URI")})  # the workers inherit it
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    workers = [w.process.pid for w in cluster.workers.values()]
    env["BIP_DASK_ADDRESS"] = cluster.scheduler_address
    print(f"cluster {cluster.scheduler_address}: {args.workers} workers, pids {workers}", flush=True)
    commands = {
        "simulate": [str(BIN / "bip"), "simulate", "--persons", str(args.persons), "--no-truth", "--seed", "5",
                     "--out", str(data)],
        "train": [str(BIN / "bip"), "train", "--data", str(data), "--promote-if-better", "--quiet"],
        "score": [sys.executable, "-c", SCORE, cluster.scheduler_address, str(data),
                  "models:/bip-employment@champion", str(max(8, args.persons // 25_000)), str(out)],
        "evaluate": [str(BIN / "bip"), "evaluate", "--data", str(data), "--kind", "all", "--out",
                     str(out / "evaluation"), "--no-log", "--quiet"],
    }
    results = []
    try:
        for stage in STAGES:
            if stage not in args.stages:
                continue
            estimate = PEAK_BYTES_PER_PERSON[stage] * args.persons
            free = _available()
            if estimate > free and not args.force:
                result = {"stage": stage, "skipped": f"estimated peak {estimate / 2**30:.1f} GiB "
                          f"({PEAK_BYTES_PER_PERSON[stage]:,} bytes a person) over the {free / 2**30:.1f} GiB free"}
                print(json.dumps(result), flush=True)
                results.append(result)
                continue
            results.append(run_stage(stage, commands[stage], env, workers, out / f"{stage}.log"))
            if results[-1]["exit"] != 0:
                break
    finally:
        cluster.close()
    (out / f"stages_{args.persons}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
