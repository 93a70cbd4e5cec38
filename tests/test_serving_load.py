"""Serving under load with several workers: the monitoring window flushed on a timer, failed-key
limits shared through one store, and the Open Inference Protocol (KServe V2) routes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import numpy as np
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


def test_a_clean_address_costs_no_query_and_still_sees_other_processes_failures(tmp_path):
    """The request path's shortcut: an address found clean is not queried again until some
    worker records a failure; then every worker asks the store at its next request."""
    import subprocess
    import sys
    from serving.security import FailedKeys
    path = tmp_path / "failed_keys.sqlite"
    store = FailedKeys(path, 3, 1000, 60)
    assert store.retry_after("10.0.0.9", None) == 0
    real, store._db = store._db, None  # any query now fails
    assert store.retry_after("10.0.0.9", None) == 0
    store._db = real
    script = ("import sys; from pathlib import Path; from serving.security import FailedKeys; "
              "s = FailedKeys(Path(sys.argv[1]), 3, 1000, 60); [s.fail('10.0.0.9', None) for _ in range(3)]")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=ROOT)
    assert store.retry_after("10.0.0.9", None) > 0  # the other process's failures, at once
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


# --- the Open Inference Protocol (KServe V2 REST)

@pytest.fixture(scope="module")
def v2(tmp_path_factory, serving_store):
    from serving.keys import add_key
    from serving.main import create_app
    folder = tmp_path_factory.mktemp("v2")
    settings = Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl",
                        audit_salt_file=folder / "salt", jobs_dir=folder / "jobs", reload_interval_s=0,
                        monitoring_db=folder / "monitoring.sqlite", failed_keys_per_address=10_000)
    keys = {role: add_key(settings.keys_file, role)[1] for role in ("caseworker", "evaluator")}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, {role: {"X-API-Key": key} for role, key in keys.items()}


@pytest.fixture(scope="module")
def scored_rows(serving_store, small_tables):
    """Feature rows of a few citizens and their scores from the batch path (models.batch)."""
    from models.batch import occasions_to_score
    from models.store import load_scoring_model
    model = load_scoring_model("models:/bip-employment@champion")
    requests = occasions_to_score(small_tables["measurements"], "latest").head(5)
    X = model.features(requests, small_tables).to_numpy()
    frame = model.score_frame(requests, small_tables)
    return model, X, frame


def _json_rows(X):
    return [[None if value != value else float(value) for value in row] for row in X]  # NaN -> null


def test_v2_infer_gives_the_models_curve(v2, scored_rows):
    client, keys = v2
    model, X, frame = scored_rows
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2/models/bip-employment", headers=keys["caseworker"]).json()
    assert meta["inputs"] == [{"name": "features", "datatype": "FP64", "shape": [-1, X.shape[1]]}]
    assert meta["parameters"]["feature_names"] == list(model.spec.names)
    assert client.get("/v2/models/bip-employment/ready", headers=keys["caseworker"]).json()["ready"] is True
    request = {"id": "r-1", "inputs": [{"name": "features", "shape": list(X.shape), "datatype": "FP64",
                                        "data": _json_rows(X)}]}
    answer = client.post("/v2/models/bip-employment/infer", json=request, headers=keys["caseworker"])
    assert answer.status_code == 200, answer.text
    out = {o["name"]: o for o in answer.json()["outputs"]}
    assert answer.json()["id"] == "r-1" and answer.json()["model_version"] == "1"
    H = len(model.horizons)
    assert out["probability"]["shape"] == [len(X), H]
    got = np.array(out["probability"]["data"]).reshape(len(X), H)
    expected = frame[[f"probability_{h}m" for h in model.horizons]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    low = np.array(out["interval_low"]["data"]).reshape(len(X), H)
    assert (low <= got + 1e-12).all()
    # one input per feature (flat data, shape [n]) gives the same
    per_feature = {"inputs": [{"name": name, "shape": [len(X)], "datatype": "FP32",
                               "data": [row[k] for row in _json_rows(X)]} for k, name in enumerate(model.spec.names)],
                   "outputs": [{"name": "probability"}]}
    answer = client.post("/v2/models/bip-employment/infer", json=per_feature, headers=keys["caseworker"])
    assert answer.status_code == 200, answer.text
    assert [o["name"] for o in answer.json()["outputs"]] == ["probability"]
    np.testing.assert_allclose(np.array(answer.json()["outputs"][0]["data"]).reshape(len(X), H), expected, rtol=1e-12)


def test_v2_refuses_wrong_shapes_types_names_and_keys(v2, scored_rows):
    client, keys = v2
    model, X, _ = scored_rows
    F = X.shape[1]
    url = "/v2/models/bip-employment/infer"
    row = _json_rows(X[:1])

    def send(inputs, headers=keys["caseworker"], path=url, **extra):
        return client.post(path, json={"inputs": inputs, **extra}, headers=headers)

    tensor = {"name": "features", "shape": [1, F], "datatype": "FP64", "data": row}
    assert send([tensor], headers={}).status_code == 401
    assert send([tensor], headers=keys["evaluator"]).status_code == 403
    cases = [
        ([{**tensor, "shape": [1, F - 1]}], "inputs[0].shape"),
        ([{**tensor, "shape": [2, F]}], "inputs[0].data"),
        ([{**tensor, "datatype": "BYTES"}], "inputs[0].datatype"),
        ([{**tensor, "data": [["x"] * F]}], "inputs[0].data[0]"),
        ([{**tensor, "name": "feature"}], "inputs[0].name"),
        ([{"name": model.spec.names[0], "shape": [1], "datatype": "FP64", "data": [1.0]}], "inputs"),
        ([], "inputs"),
    ]
    for inputs, field in cases:
        answer = send(inputs)
        assert answer.status_code == 400, (field, answer.text)
        assert answer.json()["errors"][0]["field"] == field and field in answer.json()["error"]
    answer = send([tensor], outputs=[{"name": "shap"}])
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "outputs[0].name"
    answer = send([tensor], path="/v2/models/other/infer")
    assert answer.status_code == 404 and "bip-employment" in answer.json()["error"]
    assert client.get("/v2/models/other", headers=keys["caseworker"]).status_code == 404
    assert client.post(url, content=b"[1, 2]", headers={**keys["caseworker"], "content-type": "application/json"}
                       ).status_code == 422  # not an object: the service's own validation answer
