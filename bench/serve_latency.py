"""Latency of /v1/score with full explanation against `mlflow models serve` (OMP_NUM_THREADS=1,
warm) of (a) the champion's own booster saved with MLflow's plain XGBoost flavor and (b) a
300-tree depth-6 50-feature XGBoost model, both scoring one feature row without explanation.
One client, requests interleaved, all in one run.

Run after `make run` has registered a champion:  .venv/bin/python bench/serve_latency.py [--n 500]
Prints p50 and p99 of each and the ratios (mlflow / ours). Needs nothing but loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT))
from bench.service import start, wait_for  # noqa: E402


def native_models(body: dict, folder: Path) -> tuple[dict, Path, dict, Path]:
    """(row, path) for the champion's booster in the plain XGBoost flavor, and for a 300-tree
    depth-6 50-feature booster: the peers as their own users would serve them."""
    import mlflow.xgboost
    import xgboost as xgb

    from models.store import configure_tracking, load_scoring_model
    from serving.citizen import request_tables
    from serving.schemas import ScoreRequest
    configure_tracking()
    model = load_scoring_model()
    request = ScoreRequest.model_validate(body)
    tables = request_tables(request, model.schema)
    as_of = max(m.measured_at for m in request.measurements)
    features = model.features(pd.DataFrame({"person_id": [request.person.person_id], "as_of": [pd.Timestamp(as_of)]}), tables)
    champion = folder / "champion_xgboost"
    mlflow.xgboost.save_model(model.head().estimator.booster, champion)  # the default (12-month) head
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 50))
    y = (X[:, :5].sum(axis=1) + rng.normal(size=len(X)) > 0).astype(int)
    big = xgb.train({"max_depth": 6, "objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(X, label=y), 300)
    reference = folder / "xgb_300x6x50"
    mlflow.xgboost.save_model(big, reference)
    big_row = pd.DataFrame(X[:1], columns=[f"f{i}" for i in range(50)])
    as_split = lambda frame: {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}  # noqa: E731
    return as_split(features), champion, as_split(big_row), reference


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _with_wrk(key: str, body: dict, row: dict, seconds: int = 15) -> None:
    """The same two paths with wrk (a C client, one connection): the Python client above adds
    about a millisecond of its own to every call."""
    from bench.throughput import run_wrk
    folder = Path(tempfile.mkdtemp())
    ours, theirs = folder / "ours.lua", folder / "theirs.lua"
    ours.write_text(_lua(body, {"X-API-Key": key}))
    theirs.write_text(_lua(row, {}))
    a = run_wrk("http://127.0.0.1:8101/v1/score", 1, seconds, ours)
    b = run_wrk("http://127.0.0.1:8102/invocations", 1, seconds, theirs)
    print(f"\nwith wrk, one connection, {seconds} s each")
    print(f"{'bip /v1/score + explanation':40s} {a['p50']:8.2f} {a['p99']:8.2f}   errors {a['errors']}")
    print(f"{'mlflow models serve, no explanation':40s} {b['p50']:8.2f} {b['p99']:8.2f}   errors {b['errors']}")
    print(f"ratio mlflow/bip: p50 {b['p50'] / a['p50']:.2f}x, p99 {b['p99'] / a['p99']:.2f}x")


def _lua(body: dict, headers: dict) -> str:
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    return "\n".join(lines + [f"wrk.body = {json.dumps(json.dumps(body))}"]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlruns/mlflow.db"),
           "BIP_KEYS_FILE": "var/bench_keys.json", "BIP_AUDIT_LOG": "var/bench_audit.jsonl", "BIP_RELOAD_INTERVAL_S": "0"}
    from serving.keys import add_key
    _, key = add_key(ROOT / "var" / "bench_keys.json", "caseworker")
    body = json.loads((ROOT / "serving" / "example_citizen.json").read_text())
    row, champion, big_row, reference = native_models(body, Path(tempfile.mkdtemp()))
    ours = start([str(BIN / "bip"), "serve", "--port", "8101", "--workers", "1"], env)
    theirs = start([str(BIN / "mlflow"), "models", "serve", "-m", str(champion), "--env-manager", "local",
                    "-p", "8102", "--workers", "1"], env)
    big = start([str(BIN / "mlflow"), "models", "serve", "-m", str(reference), "--env-manager", "local",
                 "-p", "8103", "--workers", "1"], env)
    try:
        wait_for("http://127.0.0.1:8101/ready")
        wait_for("http://127.0.0.1:8102/ping")
        wait_for("http://127.0.0.1:8103/ping")
        ours_name, theirs_name = "bip /v1/score + explanation", "mlflow serve, same booster, xgboost flavor"
        big_name = "mlflow serve, 300x6x50 xgboost"
        timings = {ours_name: [], theirs_name: [], big_name: [], "bip GET /health (no-op round trip)": []}
        with httpx.Client(timeout=10) as client:
            calls = [
                (ours_name, lambda: client.post("http://127.0.0.1:8101/v1/score", json=body, headers={"X-API-Key": key})),
                (theirs_name, lambda: client.post("http://127.0.0.1:8102/invocations", json=row)),
                (big_name, lambda: client.post("http://127.0.0.1:8103/invocations", json=big_row)),
                ("bip GET /health (no-op round trip)", lambda: client.get("http://127.0.0.1:8101/health")),
            ]
            for i in range(args.warmup + args.n):
                for name, call in (calls if i % 2 == 0 else calls[::-1]):  # interleaved, alternating order
                    start_time = time.perf_counter()
                    response = call()
                    elapsed = 1e3 * (time.perf_counter() - start_time)
                    if response.status_code != 200:
                        raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")
                    if i >= args.warmup:
                        timings[name].append(elapsed)
        print(f"{'path':40s} {'p50 ms':>8s} {'p99 ms':>8s}   (n={args.n} each, interleaved, one client)")
        stats = {name: percentiles(ms) for name, ms in timings.items()}
        for name, (p50, p99) in stats.items():
            print(f"{name:40s} {p50:8.2f} {p99:8.2f}")
        ours_p50, ours_p99 = stats[ours_name]
        for name in (theirs_name, big_name):
            base_p50, base_p99 = stats[name]
            print(f"ratio {name} / bip: p50 {base_p50 / ours_p50:.2f}x, p99 {base_p99 / ours_p99:.2f}x")
        if shutil.which("wrk"):
            _with_wrk(key, body, row)
    finally:
        for process in (ours, theirs, big):
            os.killpg(process.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
