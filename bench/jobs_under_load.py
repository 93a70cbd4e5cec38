"""Two heavy jobs (a 100,000-person cohort scored at every measurement with explanations, and a
BIP-mode evaluation on 40,000 persons) while /health and /v1/score keep being asked, on a real
`bip serve --workers 2`. Prints p50/p99 of both routes before the jobs (the baseline, same run) and
while they run, the ratio, the jobs' end states and durations, and whether the server workers are
the same processes before and after. Also times the refusal of a 10,000,000-row zstd Parquet and
the server's memory growth for it.

    .venv/bin/python bench/jobs_under_load.py [--persons 100000] [--eval-persons 40000]

Needs a champion (make run). Simulates its cohorts with --no-truth into data/bench_* (seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT))
from bench.service import serve, wait_for  # noqa: E402
PORT = 8104
URL = f"http://127.0.0.1:{PORT}"


def simulate(persons: int, folder: Path) -> Path:
    if not (folder / "persons.parquet").exists():
        subprocess.run([str(BIN / "bip"), "simulate", "--persons", str(persons), "--seed", "5", "--no-truth",
                        "--out", str(folder)], check=True, cwd=ROOT)
    return folder


def worker_pids(master: int) -> list[int]:
    import psutil
    return sorted(child.pid for child in psutil.Process(master).children(recursive=False))


def rss_mb(master: int) -> float:
    import psutil
    processes = [psutil.Process(master)] + psutil.Process(master).children(recursive=False)
    return sum(p.memory_info().rss for p in processes) / 2**20


def sample(client: httpx.Client, key: str, body: dict, seconds: float) -> dict[str, list[float]]:
    """Alternate /health and /v1/score for `seconds`; latencies in ms (failures count as errors)."""
    out = {"health": [], "score": [], "errors": []}
    end = time.time() + seconds
    while time.time() < end:
        for name, call in (("health", lambda: client.get(f"{URL}/health")),
                           ("score", lambda: client.post(f"{URL}/v1/score", json=body, headers={"X-API-Key": key}))):
            t = time.perf_counter()
            try:
                response = call()
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            (out[name] if ok else out["errors"]).append(1e3 * (time.perf_counter() - t))
        time.sleep(0.02)
    return out


def stats(ms: list[float]) -> str:
    if not ms:
        return "no answers"
    return f"p50 {np.percentile(ms, 50):7.2f} ms  p99 {np.percentile(ms, 99):7.2f} ms  (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--eval-persons", type=int, default=40_000)
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args()
    cohort = simulate(args.persons, ROOT / "data" / f"bench_{args.persons}")
    evaluation = simulate(args.eval_persons, ROOT / "data" / f"bench_{args.eval_persons}")
    var = Path(tempfile.mkdtemp(prefix="bip-bench-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BIP_KEYS_FILE": str(var / "keys.json"),
           "BIP_AUDIT_LOG": str(var / "audit.jsonl"), "BIP_JOBS_DIR": str(var / "jobs"),
           "BIP_RELOAD_INTERVAL_S": "0", "BIP_JOB_WORKERS": "2"}
    from serving.keys import add_key
    _, caseworker = add_key(var / "keys.json", "caseworker")
    _, evaluator = add_key(var / "keys.json", "evaluator")
    body = json.loads((ROOT / "serving" / "example_citizen.json").read_text())
    server = serve(PORT, env)
    try:
        wait_for(f"{URL}/ready", 90)
        with httpx.Client(timeout=30) as client:
            time.sleep(2)  # both workers up
            before_pids = worker_pids(server.pid)
            sample(client, caseworker, body, 3)  # warm-up
            quiet = sample(client, caseworker, body, 20)

            # the oversized upload: refused from the Parquet footer
            import pyarrow as pa
            import pyarrow.parquet as pq
            huge = var / "huge.parquet"
            pq.write_table(pa.table({"person_id": pa.array(np.zeros(10_000_000, dtype=np.int8))}), huge,
                           compression="zstd")
            rss0 = rss_mb(server.pid)
            t = time.perf_counter()
            refused = client.post(f"{URL}/v1/cohorts/score", headers={"X-API-Key": evaluator},
                                  files={"persons": ("p.parquet", huge.read_bytes()),
                                         "measurements": ("m.parquet", huge.read_bytes())})
            refusal_s = time.perf_counter() - t
            refusal_growth = rss_mb(server.pid) - rss0

            def files(folder, names):
                return {n: (f"{n}.parquet", (folder / f"{n}.parquet").read_bytes()) for n in names}

            t0 = time.time()
            cohort_job = client.post(f"{URL}/v1/cohorts/score?at=every&explain=true&format=parquet",
                                     headers={"X-API-Key": evaluator},
                                     files=files(cohort, ("persons", "measurements", "activities"))).json()
            evaluation_job = client.post(f"{URL}/v1/evaluations", headers={"X-API-Key": evaluator},
                                         data={"kind": "virksomhedspraktik"},
                                         files=files(evaluation, ("persons", "measurements", "activities", "outcomes"))).json()
            busy = {"health": [], "score": [], "errors": []}
            states = {}
            while time.time() - t0 < args.timeout:
                part = sample(client, caseworker, body, 5)
                for k in busy:
                    busy[k] += part[k]
                states = {name: client.get(f"{URL}{job['status_url']}", headers={"X-API-Key": evaluator}).json()
                          for name, job in (("cohort", cohort_job), ("evaluation", evaluation_job))}
                if all(s["state"] in ("done", "failed", "cancelled") for s in states.values()):
                    break
            after_pids = worker_pids(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)

    print(f"server: bip serve --workers 2, jobs: BIP_JOB_WORKERS=2; {os.cpu_count()} cores")
    print(f"{'/health, quiet':28s} {stats(quiet['health'])}")
    print(f"{'/health, two heavy jobs':28s} {stats(busy['health'])}")
    print(f"{'/v1/score, quiet':28s} {stats(quiet['score'])}")
    print(f"{'/v1/score, two heavy jobs':28s} {stats(busy['score'])}")
    ratio = np.percentile(busy["health"], 99) / np.percentile(quiet["health"], 99)
    print(f"p99 /health busy/quiet: {ratio:.2f}x; failed requests while busy: {len(busy['errors'])}")
    for name, status in states.items():
        print(f"job {name}: {status['state']} after {status['elapsed_s']:.0f} s ({status['message']}); "
              f"errors: {status.get('errors')}")
    print(f"server workers before {before_pids}, after {after_pids}: {'same' if before_pids == after_pids else 'CHANGED'}")
    print(f"10,000,000-row zstd Parquet: {refused.status_code} in {refusal_s:.2f} s, server memory +{refusal_growth:.0f} MB")


if __name__ == "__main__":
    main()
