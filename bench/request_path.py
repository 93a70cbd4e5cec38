"""Where the time of one POST /v1/score goes inside the service (no network, no client): the
whole ASGI app (every middleware, auth, audit, metrics, logs, security headers) against the
floor of the same answer (validation, score_citizen with explanation and curve, JSON encoding)
and the peer, called in turn in one process, then a cProfile of the app's calls by own time.

The peer is the best-configured native call for an explanation: the same booster (the default
head) through xgboost's own `predict(DMatrix(row), pred_contribs=True)`, one thread, warmed, on
the request's feature row. It does far less than the floor (one head's SHAP values of a row
already built: no body, no checks, no features, no curve, no intervals, no texts, no JSON).

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python bench/request_path.py [--n 3000]

Trains a small champion into a temporary store first (~1-2 min). Complements
bench/serve_latency.py (wrk over loopback against mlflow models serve).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import os
import pstats
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--folder", type=Path, help="reuse the store a previous run left there")
    parser.add_argument("--sort", default="tottime", help="cProfile order: tottime or cumtime")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bip-request-path-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
    from bip.config import Settings
    from features.sources import citizen_body
    from features.tables import read_tables
    from simulation.simulate import simulate
    from training.train import train
    if not (folder / "cohort").exists():
        simulate(persons=600, seed=11, out=folder / "cohort", paths=16, effect_paths=24)
        train(folder / "cohort", "xgboost", 12, promote_if_better=True, seed=7)
    print(f"store: {folder} (--folder to reuse)")
    tables = read_tables(folder / "cohort")
    person = tables["measurements"]["person_id"].value_counts().index[0]
    body = json.dumps(citizen_body(tables, person)).encode()

    from serving.keys import add_key
    from serving.main import create_app
    settings = Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl",
                        audit_salt_file=folder / "salt", jobs_dir=folder / "jobs", reload_interval_s=0,
                        monitoring_db=folder / "monitoring.sqlite")
    for stale in ("keys.json", "jobs", "monitoring.sqlite"):  # a reused folder: start clean
        (folder / stale).unlink(missing_ok=True) if stale != "jobs" else None
    _, key = add_key(settings.keys_file, "caseworker")
    app = create_app(settings)
    logging.getLogger("bip").handlers[0].stream = open(os.devnull, "w")  # the access log, written not shown

    scope = {"type": "http", "method": "POST", "path": "/v1/score", "raw_path": b"/v1/score", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()), (b"x-api-key", key.encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "scheme": "http", "http_version": "1.1",
             "root_path": "", "app": app}

    async def call_app() -> int:
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await app({**scope, "headers": list(scope["headers"])}, receive, send)
        return sent[0]["status"]

    from serving.deps import JSONAnswer
    from serving.citizen import score_citizen
    from serving.schemas import ScoreRequest

    async def floor() -> None:
        current = app.state.holder.current
        request = ScoreRequest.model_validate_json(body)
        result = score_citizen(current.model, request, date.today())
        result["as_of"] = result["as_of"].isoformat()
        if result["change"]["previous_as_of"] is not None:
            result["change"]["previous_as_of"] = result["change"]["previous_as_of"].isoformat()
        JSONAnswer(result).body  # the route's own encoder

    import pandas as pd
    import xgboost as xgb

    from serving.citizen import request_tables

    def native_peer():
        """The default head's booster and the request's feature row (float32, as a DMatrix takes it)."""
        model = app.state.holder.current.model
        request = ScoreRequest.model_validate_json(body)
        as_of = request.as_of or max(m.measured_at for m in request.measurements)
        frame = pd.DataFrame({"person_id": [request.person.person_id], "as_of": [pd.Timestamp(as_of)]})
        row = model.features(frame, request_tables(request, model.schema)).to_numpy(dtype=np.float32)
        booster = model.head().estimator.booster
        booster.set_param({"nthread": 1})
        return lambda: booster.predict(xgb.DMatrix(row, nthread=1), pred_contribs=True)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            assert await call_app() == 200
            peer = native_peer()
            for _ in range(200):  # warm
                await call_app()
                await floor()
                peer()
            full, bare, native = [], [], []
            for _ in range(args.n):
                t = time.perf_counter()
                await call_app()
                full.append(time.perf_counter() - t)
                t = time.perf_counter()
                await floor()
                bare.append(time.perf_counter() - t)
                t = time.perf_counter()
                peer()
                native.append(time.perf_counter() - t)
            f, b, p = (1e6 * np.median(x) for x in (full, bare, native))
            print(f"n={args.n} in turn, median per request: app {f:.0f} us, floor (validate+score+encode) "
                  f"{b:.0f} us, the service's own layers {f - b:.0f} us; app p99 {1e6 * np.percentile(full, 99):.0f} us")
            print(f"peer (xgboost predict pred_contribs, 1 thread, one row of the same booster) {p:.0f} us: "
                  f"floor / peer {b / p:.2f}x, app / peer {f / p:.2f}x")
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.n):
                await call_app()
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(25)
            print(out.getvalue())

    asyncio.run(run())


if __name__ == "__main__":
    main()
