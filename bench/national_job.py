"""The national evaluation as a job through the service, with default settings: 100,000 simulated
persons (six years; an outcomes table of about 5.3M rows), every intervention kind, submitted as
Parquet to `POST /v1/evaluations` on a real `bip serve --workers 2`. Reports the job's wall time,
the job process's peak resident and virtual memory (sampled from /proc every 0.5 s; the virtual
size is what BIP_JOB_MEMORY_BYTES limits), the service's estimate for it, /health p50/p99 while it
runs, and how fast bombs are refused (a Parquet claiming many rows, gzip CSV).

    .venv/bin/python -m bench.national_job [--persons 100000] [--kind all] [--port 8127]

Also prints the job's stage timeline (each progress message with the second it first appeared),
which says where the time goes.

Simulates its cohort with --no-truth into data/bench_national_<persons> (about 20 s). Needs no
champion (the evaluation is asked without the score).
"""

from __future__ import annotations

import argparse
import gzip
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT))
from bench.service import serve, wait_for  # noqa: E402
TABLES = ("persons", "measurements", "activities", "outcomes")


def simulate(persons: int, folder: Path) -> Path:
    if not (folder / "persons.parquet").exists():
        subprocess.run([str(BIN / "bip"), "simulate", "--persons", str(persons), "--seed", "5", "--no-truth",
                        "--out", str(folder)], check=True, cwd=ROOT)
    return folder


class JobMemory(threading.Thread):
    """Peak RSS and virtual size of the job processes under the server (python -m serving.jobs), and
    the CPU seconds the job had (on a shared machine, far less than its wall time)."""

    def __init__(self, master: int):
        super().__init__(daemon=True)
        self.master, self.rss, self.vms, self.cpu, self.stop = master, 0, 0, 0.0, threading.Event()

    def run(self):
        import psutil
        while not self.stop.wait(0.5):
            try:
                for child in psutil.Process(self.master).children(recursive=True):
                    if "serving.jobs" in " ".join(child.cmdline()):
                        info, cpu = child.memory_info(), child.cpu_times()
                        self.rss, self.vms = max(self.rss, info.rss), max(self.vms, info.vms)
                        self.cpu = max(self.cpu, cpu.user + cpu.system)
            except psutil.Error:
                pass


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--kind", default="all")
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--port", type=int, default=8127)
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    with socket.socket() as probe:  # a server already there would be measured instead of ours
        if probe.connect_ex(("127.0.0.1", args.port)) == 0:
            sys.exit(f"port {args.port} is in use; pass --port")
    data = simulate(args.persons, ROOT / "data" / f"bench_national_{args.persons}")
    var = Path(tempfile.mkdtemp(prefix="bip-national-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BIP_KEYS_FILE": str(var / "keys.json"),
           "BIP_AUDIT_LOG": str(var / "audit.jsonl"), "BIP_JOBS_DIR": str(var / "jobs"),
           "BIP_AUDIT_SALT_FILE": str(var / "salt"), "MLFLOW_TRACKING_URI": f"sqlite:///{var}/mlflow.db"}
    from bip.config import Settings
    from serving.keys import add_key
    from serving.uploads import job_bytes, measure_upload
    _, evaluator = add_key(var / "keys.json", "evaluator")
    defaults = Settings()
    sizes = [measure_upload(data / f"{name}.parquet", name, defaults) for name in TABLES]
    estimate = job_bytes(sizes, "evaluation")
    server = serve(args.port, env)
    memory = JobMemory(server.pid)
    health: list[float] = []
    try:
        wait_for(f"{url}/health")
        with httpx.Client(timeout=60) as client:
            time.sleep(3)
            key = {"X-API-Key": evaluator}
            # bombs: refused before any parsing
            import pyarrow as pa
            import pyarrow.parquet as pq
            bomb = var / "measurements.parquet"
            pq.write_table(pa.table({"person_id": pa.array(np.zeros(5_000_000, dtype=np.int8))}), bomb,
                           compression="zstd")
            small = {n: (f"{n}.parquet", (data / f"{n}.parquet").read_bytes()) for n in ("persons", "outcomes")}
            t = time.perf_counter()
            refused = client.post(f"{url}/v1/evaluations", headers=key, data={"kind": "all"},
                                  files={**small, "measurements": ("m.parquet", bomb.read_bytes())})
            parquet_bomb = (refused.status_code, time.perf_counter() - t, refused.json()["errors"][0])
            gz = gzip.compress(b"person_id\n" + b"0\n" * 30_000_000, 9)
            t = time.perf_counter()
            refused = client.post(f"{url}/v1/evaluations", headers=key, data={"kind": "all"},
                                  files={**small, "measurements": ("m.csv", gz)})
            gzip_bomb = (refused.status_code, time.perf_counter() - t, refused.json()["errors"][0], len(gz))

            files = {n: (f"{n}.parquet", (data / f"{n}.parquet").read_bytes()) for n in TABLES}
            memory.start()
            load_before = os.getloadavg()[0]
            t0 = time.time()
            submitted = client.post(f"{url}/v1/evaluations", headers=key, data={"kind": args.kind}, files=files)
            assert submitted.status_code == 202, submitted.text
            status_url = submitted.json()["status_url"]
            status, stages = {}, []
            while time.time() - t0 < args.timeout:
                for _ in range(20):
                    t = time.perf_counter()
                    client.get(f"{url}/health").raise_for_status()
                    health.append(1e3 * (time.perf_counter() - t))
                    time.sleep(0.05)
                status = client.get(f"{url}{status_url}", headers=key).json()
                if not stages or stages[-1][1] != status.get("message"):
                    stages.append((time.time() - t0, status.get("message"), status.get("progress")))
                if status["state"] in ("done", "failed", "cancelled"):
                    break
            wall = time.time() - t0
            memory.stop.set()
            if status.get("state") not in ("done", "failed", "cancelled"):
                # past --timeout: the job runs in its own session and would outlive the server
                client.delete(f"{url}{status_url}", headers=key)
            timing = {}
            if status.get("state") == "done":  # where the job's time went, as evaluate() timed it
                result = client.get(f"{url}{status['result_url']}", headers=key).json()
                timing = {"occasions and features": result.get("timing", {}).get("occasions_and_features_s"),
                          **{f"{k}: cross-fits and progression": v.get("seconds") for k, v in result["kinds"].items()},
                          "evaluate() in all": result.get("timing", {}).get("total_s")}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
    load = os.getloadavg()
    print(f"national evaluation job: {args.persons} persons, kind={args.kind}, default settings, "
          f"bip serve --workers 2; {os.cpu_count()} cores, load average {load_before:.1f} at the start, "
          f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end")
    for size in sizes:
        print(f"  {size.name}: {size.rows} rows x {size.columns} columns, {size.unpacked} bytes unpacked")
    print(f"state {status.get('state')} after {wall:.0f} s (job elapsed {status.get('elapsed_s')} s): "
          f"{status.get('message')} {status.get('errors') or ''}; the job process had {memory.cpu:.0f} CPU s")
    for second, message, fraction in stages:
        print(f"  {second:7.1f} s  {fraction:5.2f}  {message}")
    for stage, seconds in timing.items():
        if seconds is not None:
            print(f"  {stage}: {seconds:.0f} s")
    print(f"job process peak: RSS {memory.rss / 2**30:.2f} GiB, virtual {memory.vms / 2**30:.2f} GiB; "
          f"estimate {estimate / 2**30:.2f} GiB; ceiling {defaults.job_memory_bytes / 2**30:.1f} GiB")
    print(f"/health while it ran: p50 {ms(health, 50):.2f} ms, p99 {ms(health, 99):.2f} ms, max {max(health):.1f} ms "
          f"(n={len(health)})")
    print(f"Parquet bomb (5,000,000 rows, {bomb.stat().st_size} bytes): {parquet_bomb[0]} in {parquet_bomb[1]:.2f} s: "
          f"{parquet_bomb[2]}")
    print(f"gzip CSV bomb ({gzip_bomb[3]} bytes): {gzip_bomb[0]} in {gzip_bomb[1]:.2f} s: {gzip_bomb[2]}")


if __name__ == "__main__":
    main()
