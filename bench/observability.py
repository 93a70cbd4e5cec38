"""What metrics, logs and the monitoring window cost a /v1/score request.

Both measured in one process, interleaved, on the champion and the example citizen:
- the scoring path alone (`score_citizen`) against the same plus `record_score` and the
  window observer (the scored feature row counted into the shared window);
- an ASGI app answering at once, bare against wrapped in RequestObservability (request id,
  counters, histogram, one JSON access line to a null stream).

Run after `make run` has registered a champion (a model trained with this code, so its run has
a reference profile):  .venv/bin/python bench/observability.py [--n 3000]
Prints microseconds per call and the ratio (with / without).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(function, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        function()
    return 1e6 * (time.perf_counter() - start) / n


def main(n: int) -> None:
    from bip.config import Settings
    from models.store import configure_tracking
    from monitoring.service import Monitor
    from serving.citizen import score_citizen
    from serving.examples import example_request
    from serving.holder import ModelHolder
    from serving.observability import (RequestObservability, configure_logging, record_score,
                                       window_observer)
    configure_tracking()
    settings = Settings()
    holder = ModelHolder(settings.model_uri)
    ok, message = holder.load()
    if not ok:
        raise SystemExit(f"no champion: {message} (run make run first)")
    current = holder.current
    body = example_request(current.model.schema)
    with tempfile.TemporaryDirectory() as folder:
        monitor = Monitor(Settings(monitoring_db=Path(folder) / "window.sqlite"))
        if monitor.profile(current) is None:
            raise SystemExit("the champion's run has no reference profile: retrain with this code")

        def plain():
            score_citizen(current.model, body, date.today())

        def observed():
            result = score_citizen(current.model, body, date.today(), observe=window_observer(monitor, current))
            record_score(result["probability"])

        configure_logging(stream=io.StringIO())

        async def bare(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        wrapped = RequestObservability(bare)
        scope = {"type": "http", "method": "GET", "path": "/health", "headers": [], "state": {}}

        async def sink(message):
            return None

        async def nothing():
            return {"type": "http.request", "body": b""}

        loop = asyncio.new_event_loop()
        rounds = {"score": [], "score+monitoring": [], "asgi bare": [], "asgi+observability": []}
        for _ in range(5):  # interleaved rounds, so a busy neighbour hits both sides alike
            rounds["score"].append(timed(plain, n // 5))
            rounds["score+monitoring"].append(timed(observed, n // 5))
            rounds["asgi bare"].append(timed(lambda: loop.run_until_complete(bare(dict(scope), nothing, sink)), n // 5))
            rounds["asgi+observability"].append(
                timed(lambda: loop.run_until_complete(wrapped(dict(scope), nothing, sink)), n // 5))
        monitor.window.flush()
    median = {k: float(np.median(v)) for k, v in rounds.items()}
    for name, value in median.items():
        print(f"{name:22s} {value:9.1f} us per call (median of 5 rounds)")
    print(f"ratio score+monitoring / score: {median['score+monitoring'] / median['score']:.3f}")
    print(f"observability middleware adds {median['asgi+observability'] - median['asgi bare']:.1f} us per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    main(parser.parse_args().n)
