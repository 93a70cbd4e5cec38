"""Serving under load with several workers: the monitoring window flushed on a timer, failed-key
limits shared through one store, and the Open Inference Protocol (KServe V2) routes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bip.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def _rows(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COALESCE(SUM(n), 0) FROM scored").fetchone()[0]


# --- the monitoring timer

def test_idle_worker_counts_reach_the_shared_window_on_the_timer(tmp_path):
    """Counts observed once and never followed by another score are in the shared file after a
    flush period (before, they waited for the same worker's next score)."""
    from monitoring.window import ScoreWindow, flush_periodically
    window = ScoreWindow(tmp_path / "monitoring.sqlite", flush_s=0.1)

    async def scenario():
        timer = asyncio.create_task(flush_periodically(window))
        window.observe("1", {"score": {"0.1": 3}})
        assert _rows(window.path) == 0  # nothing written on the request path
        await asyncio.sleep(0.5)  # an idle worker: no further observation
        written = _rows(window.path)
        timer.cancel()
        return written

    assert asyncio.run(scenario()) == 3


def test_every_worker_runs_the_flush_timer(tmp_path):
    """The app's lifespan starts the timer: counts observed in a worker reach the file without a
    further request, and the shutdown flushes the rest."""
    from serving.main import create_app
    settings = Settings(keys_file=tmp_path / "keys.json", audit_log=tmp_path / "audit.jsonl",
                        audit_salt_file=tmp_path / "salt", jobs_dir=tmp_path / "jobs", reload_interval_s=0,
                        model_uri="models:/none@champion", monitoring_db=tmp_path / "monitoring.sqlite",
                        monitoring_flush_s=0.1)
    app = create_app(settings)
    with TestClient(app):
        app.state.monitor.window.observe("1", {"score": {"0.2": 2}})
        deadline = time.monotonic() + 5
        while _rows(settings.monitoring_db) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _rows(settings.monitoring_db) == 2
        app.state.monitor.window.observe("1", {"score": {"0.2": 1}})
    assert _rows(settings.monitoring_db) == 3  # the shutdown flush


# --- failed-key limits shared by the workers

def _keyed_app(folder, **limits):
    """One worker's app; several built on the same jobs_dir share the failed-key store like
    uvicorn workers of one machine."""
    from serving.main import create_app
    settings = Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl",
                        audit_salt_file=folder / "salt", jobs_dir=folder / "jobs", reload_interval_s=0,
                        audit_refused_interval_s=3600, **limits)
    return TestClient(create_app(settings), raise_server_exceptions=False), settings


def test_failed_key_limit_is_shared_by_two_workers(tmp_path):
    """Before: each worker kept its own count, so two workers allowed twice the budget."""
    first, _ = _keyed_app(tmp_path, failed_keys_per_address=4, failed_keys_per_key=1000)
    second, _ = _keyed_app(tmp_path, failed_keys_per_address=4, failed_keys_per_key=1000)
    codes = [(first if i % 2 else second).get("/v1/model", headers={"X-API-Key": f"wrong{i}"}).status_code
             for i in range(6)]
    assert codes == [401, 401, 401, 401, 429, 429]
    assert int(first.get("/v1/model").headers["retry-after"]) > 0


def test_failed_key_limit_is_shared_by_two_processes(tmp_path):
    """Two processes (as uvicorn's workers are) against one store: the second sees the first's failures."""
    import subprocess
    import sys
    from serving.security import FailedKeys
    path = tmp_path / "failed_keys.sqlite"
    script = ("import sys; from pathlib import Path; from serving.security import FailedKeys; "
              "s = FailedKeys(Path(sys.argv[1]), 3, 1000, 60); [s.fail('10.0.0.9', None) for _ in range(3)]")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=ROOT)
    store = FailedKeys(path, 3, 1000, 60)
    assert store.retry_after("10.0.0.9", None) > 0
    assert store.retry_after("10.0.0.10", None) == 0


def test_knowing_a_key_id_cannot_lock_its_owner_out(tmp_path):
    """Before: 50 wrong secrets with a real key id (bip_<id>_...) refused the owner for a minute.
    Now the many-address guessing is refused, the owner (whose address sent no wrong key) is not."""
    from serving.keys import add_key
    client, settings = _keyed_app(tmp_path, failed_keys_per_address=5, failed_keys_per_key=6)
    key_id, key = add_key(settings.keys_file, "caseworker")
    from serving.security import FailedKeys
    store = FailedKeys(settings.failed_keys_db, 5, 6, 60)
    for n in range(12):  # 12 wrong secrets for the real key id from 4 addresses, 3 each
        store.fail(f"10.1.0.{n % 4}", key_id)
    assert store.retry_after("10.1.0.1", key_id) > 0  # the guessers are refused for this key
    assert store.retry_after("10.1.0.1", None) == 0  # (under the address limit otherwise)
    # the app's gate reads the same file; the test client's address sent no wrong key: the owner passes
    owner = client.get("/v1/jobs/0123456789abcdef", headers={"X-API-Key": key})
    assert owner.status_code == 404, owner.text  # authenticated (no such job), not 401 or 429
    wrong = f"bip_{key_id}_not-the-secret"
    assert client.get("/v1/model", headers={"X-API-Key": wrong}).status_code == 401  # its first failure
    assert client.get("/v1/model", headers={"X-API-Key": wrong}).status_code == 429  # then refused for this key
    assert client.get("/v1/jobs/0123456789abcdef", headers={"X-API-Key": key}).status_code == 429  # now a guesser
