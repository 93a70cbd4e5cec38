"""Throughput of /v1/score (full explanation) at 1, 8 and 32 concurrent clients, 30 s each, with
wrk (Debian's wrk; a C load generator, so the client steals little CPU from the server), beside
GET /health on the same server as the no-op baseline.

    .venv/bin/python bench/throughput.py [--seconds 30] [--workers N]

Prints requests/s, p50, p99 and errors (non-2xx and socket errors) per level. Needs a champion.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT))


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(url: str, connections: int, seconds: int, script: Path | None) -> dict:
    command = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", output, re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": _ms(latency["50"]), "p99": _ms(latency["99"]),
            "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    from serving.keys import add_key
    _, key = add_key(ROOT / "var" / "bench_keys.json", "caseworker")
    body = (ROOT / "serving" / "example_citizen.json").read_text()
    script = Path(tempfile.mkdtemp()) / "score.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.headers["X-API-Key"] = "{key}"\nwrk.body = {json.dumps(json.dumps(json.loads(body)))}\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BIP_KEYS_FILE": "var/bench_keys.json",
           "BIP_AUDIT_LOG": "var/bench_audit.jsonl", "BIP_RELOAD_INTERVAL_S": "0"}
    server = subprocess.Popen([str(BIN / "bip"), "serve", "--port", "8103", "--workers", str(args.workers)], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get("http://127.0.0.1:8103/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        run_wrk("http://127.0.0.1:8103/v1/score", 4, 3, script)  # warm every worker
        print(f"bip serve, {args.workers} worker(s); wrk, {args.seconds} s per level")
        print(f"{'route':28s} {'clients':>7s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
        for connections in (1, 8, 32):
            for route, lua in (("POST /v1/score + explain", script), ("GET /health (no-op)", None)):
                r = run_wrk(f"http://127.0.0.1:8103{'/v1/score' if lua else '/health'}", connections, args.seconds, lua)
                print(f"{route:28s} {connections:7d} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:7d}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
