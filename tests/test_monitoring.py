"""Monitoring on the simulator: drift flags the indicator that moved and no other; the label-free
estimate follows the realized performance into the later (better labour market) years; metrics,
request ids, the access log and /v1/monitoring through the app; /metrics summed over two real
uvicorn workers."""

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bip.config import Settings
from monitoring.drift import chi_square_p, drift_report, psi
from monitoring.estimate import expected_from_bins, expected_performance, expected_roc_auc
from monitoring.profile import FINE_BINS, count_for_profile, load_reference_profile
from monitoring.run import monitor, score_occasions

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def champion(serving_store):
    from models.store import load_scoring_model
    return load_scoring_model("models:/bip-employment@champion")


@pytest.fixture(scope="module")
def profile(champion):
    """The profile the training hook logged with the champion's run."""
    found = load_reference_profile(champion.metadata["run_id"])
    assert found is not None, "training logged no reference profile"
    return found


@pytest.fixture(scope="module")
def fresh_cohort(tmp_path_factory):
    """New citizens from the same simulator (another seed): the model has never seen them."""
    from simulation.simulate import simulate
    out = tmp_path_factory.mktemp("fresh_cohort")
    simulate(persons=600, seed=12, out=out, paths=16, effect_paths=24)
    return out


def _tables(folder):
    from features.tables import read_tables
    return read_tables(folder)


# --- the numbers themselves

def test_psi_and_test_on_known_counts():
    same = np.array([100, 300, 600])
    assert psi(same, same) == 0.0 and chi_square_p(same, same * 3) == pytest.approx(1.0)
    moved = np.array([600, 300, 100])
    assert psi(same, moved) > 1.0 and chi_square_p(same, moved) < 1e-10
    # a small window: large PSI but the test cannot reject, so no flag
    assert chi_square_p(np.array([1000, 1000]), np.array([3, 1])) > 0.01


def test_expected_auc_exact_and_binned():
    rng = np.random.default_rng(0)
    p = rng.beta(1, 12, 5000)
    # Monte Carlo: outcomes drawn from the scores themselves realise the expected AUC on average
    from sklearn.metrics import roc_auc_score
    draws = [roc_auc_score(rng.random(len(p)) < p, p) for _ in range(200)]
    assert expected_roc_auc(p) == pytest.approx(np.mean(draws), abs=0.005)
    fine = np.clip((p * FINE_BINS).astype(int), 0, FINE_BINS - 1)
    binned = expected_from_bins({str(b): int(n) for b, n in zip(*np.unique(fine, return_counts=True))}, FINE_BINS)
    exact = expected_performance(p)
    assert binned["roc_auc"] == pytest.approx(exact["roc_auc"], abs=2e-3)
    assert binned["positive_rate"] == pytest.approx(exact["positive_rate"], abs=2e-3)


# --- the simulator checks from the issue

def test_shifted_indicator_is_flagged_and_no_other(champion, profile, fresh_cohort):
    settings = Settings()
    tables = _tables(fresh_cohort)
    shifted_key = champion.schema.keys[0]
    scale_max = champion.schema[shifted_key].scale_max
    frame, X = score_occasions(champion, tables)
    unshifted = drift_report(profile, count_for_profile(profile, X, frame["probability"].to_numpy()), settings)
    assert all(v["status"] == "ok" for v in unshifted["indicators"].values()), unshifted["indicators"]

    measurements = tables["measurements"].copy()
    measurements[shifted_key] = (measurements[shifted_key] + 1).clip(upper=scale_max)  # both respondents, +1
    frame, X = score_occasions(champion, {**tables, "measurements": measurements})
    report = drift_report(profile, count_for_profile(profile, X, frame["probability"].to_numpy()), settings)
    flagged = {k for k, v in report["indicators"].items() if v["status"] in ("watch", "act")}
    assert flagged == {shifted_key}, {k: (v["status"], round(v["psi"], 3)) for k, v in report["indicators"].items()}
    assert report["indicators"][shifted_key]["status"] == "act"
    assert report["aspects"][f"{shifted_key}/caseworker/rating"]["p_value"] < 0.01


def test_one_row_at_a_time_counts_as_the_cohort_does(profile, champion, fresh_cohort):
    """The service counts one request at a time (a fast path); bip monitor and the profile count
    whole cohorts: the same rows must give the same counts."""
    from collections import Counter

    from monitoring.profile import ProfileCounter
    frame, X = score_occasions(champion, _tables(fresh_cohort))
    X, p = X[:400], frame["probability"].to_numpy()[:400]
    counter = ProfileCounter(profile)
    one_by_one: dict[str, Counter] = {}
    for i in range(len(X)):
        for aspect, categories in counter.count(X[i:i + 1], p[i:i + 1]).items():
            one_by_one.setdefault(aspect, Counter()).update(categories)
    assert {a: dict(c) for a, c in one_by_one.items()} == counter.count(X, p)

    # the request path's pairs (row_categories, as ScoreWindow.observe_row adds them): the same
    # counts, also for missing and unexpected values and scores on the bins' edges
    X = X.copy()
    X[:40, :] = np.nan
    X[40:80, :] = 0.5
    p = p.copy()
    p[:10], p[10:20] = 0.0, 1.0
    p[20:20 + len(counter.edges)] = counter.edges
    pairs = Counter(pair for i in range(len(X)) for pair in counter.row_categories(X[i].tolist(), float(p[i])))
    as_pairs = Counter({(aspect, category): n for aspect, categories in counter.count(X, p).items()
                        for category, n in categories.items()})
    assert pairs == as_pairs


def test_window_counts_rows_and_cohorts_alike(tmp_path):
    """observe_row (one request) and observe (a cohort's counts) add up in the same file."""
    from monitoring.window import ScoreWindow
    window = ScoreWindow(tmp_path / "w.sqlite", flush_s=60)
    window.observe_row("3", [("score", "1"), ("job_search/caseworker/rating", "missing")])
    window.observe("3", {"score": {"1": 2, "2": 1}})
    window.observe_row("4", [("score", "1")])
    assert window.counts("3") == {"score": {"1": 3, "2": 1}, "job_search/caseworker/rating": {"missing": 1}}
    assert window.counts("4") == {"score": {"1": 1}}


def test_later_years_estimate_and_realized_move_together(champion, profile, fresh_cohort, tmp_path):
    """The model was trained before the later years; in them the labour market is better. The
    estimate from the scores alone must rise with the realized rate and agree with the realized
    ROC AUC, on citizens the model never saw."""
    later = monitor(fresh_cohort, tmp_path, period="Q", log_to_mlflow=False, since="2015-01-01")
    reference_rate = profile["expected"]["positive_rate"]
    estimated, realized = later["estimated_labelled"], later["realized"]
    assert realized["n"] > 1000
    assert estimated["positive_rate"] > reference_rate and realized["positive_rate"] > reference_rate
    assert estimated["positive_rate_low"] <= realized["positive_rate"] <= estimated["positive_rate_high"]
    assert abs(estimated["roc_auc"] - realized["roc_auc"]) < 0.03
    cohorts = pd.DataFrame(later["cohorts"])
    assert (cohorts["cohort"].str[:4].astype(int) >= 2015).all() and len(cohorts) >= 4
    # per quarter the two are close too: each realized AUC within 0.1 of its estimate
    assert (abs(cohorts["estimated_roc_auc_labelled"] - cohorts["realized_roc_auc"]) < 0.1).all()


def test_bip_monitor_writes_report_and_logs_to_mlflow(serving_store, fresh_cohort, tmp_path):
    from typer.testing import CliRunner

    from cli.app import app
    result = CliRunner().invoke(app, ["monitor", "--data", str(fresh_cohort), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "flagged indicators" in result.output
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "Drift against the training profile" in page
    import mlflow
    from mlflow import MlflowClient
    run_id = MlflowClient().get_model_version("bip-employment", "1").tags["monitoring_run_id"]
    run = mlflow.get_run(run_id)
    assert run.data.tags["bip.model_version"] == "1" and "realized_roc_auc" in run.data.metrics
    logged = {a.path for a in MlflowClient().list_artifacts(run_id)}
    assert {"report.html", "performance.png", "drift.png", "monitoring.json"} <= logged
    missing = CliRunner().invoke(app, ["monitor", "--data", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no persons" in missing.output


# --- the service

@pytest.fixture(scope="module")
def service(tmp_path_factory, serving_store, small_cohort_dir):
    from serving.main import create_app
    from serving.keys import add_key
    folder = tmp_path_factory.mktemp("monitored")
    settings = Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl",
                        audit_salt_file=folder / "salt", jobs_dir=folder / "jobs", reload_interval_s=0,
                        monitoring_db=folder / "monitoring.sqlite", monitoring_flush_s=0, drift_min_count=5,
                        citizen_source=str(small_cohort_dir))
    keys = {role: add_key(settings.keys_file, role)[1] for role in ("caseworker", "evaluator")}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, keys


def _sample(text: str, name: str, **labels) -> float:
    """Sum of the samples of one series whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_metrics_ids_access_log_and_monitoring_route(service, small_tables):
    from features.sources import citizen_body
    client, keys = service
    caseworker, evaluator = {"X-API-Key": keys["caseworker"]}, {"X-API-Key": keys["evaluator"]}
    before = client.get("/metrics").text  # counters are process-wide: other tests' apps count too
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.getLogger("bip").handlers[0].formatter)
    logging.getLogger("bip").addHandler(handler)
    try:
        people = small_tables["persons"]["person_id"].head(6).tolist()
        for person in people:
            answer = client.post("/v1/score", json=citizen_body(small_tables, person), headers=caseworker)
            assert answer.status_code == 200
            assert len(answer.headers["x-request-id"]) == 32
        kept = client.get("/health", headers={"X-Request-ID": "trace-0123456789abcdef"})
        assert kept.headers["x-request-id"] == "trace-0123456789abcdef"
        replaced = client.get("/health", headers={"X-Request-ID": "bad id\" injected"})
        assert replaced.headers["x-request-id"] != "bad id\" injected" and len(replaced.headers["x-request-id"]) == 32
        bad = citizen_body(small_tables, people[0])
        bad["measurements"][0]["values"][next(iter(bad["measurements"][0]["values"]))] = 99
        assert client.post("/v1/score", json=bad, headers=caseworker).status_code == 422
        stored = client.get(f"/v1/citizens/{people[0]}/score", headers=caseworker)  # an id in the path
        assert stored.status_code == 200, stored.text
        assert client.post("/v1/score", json={}).status_code == 401  # answered before routing
    finally:
        logging.getLogger("bip").removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line.get("event") == "access"]
    assert {"/v1/score", "/health", "/v1/citizens/{person_id}/score"} <= {line["route"] for line in access}
    assert all(people[0] not in json.dumps(line) for line in lines)  # no raw ids, never a raw path
    assert any(line["request_id"] == "trace-0123456789abcdef" for line in access)

    from serving.jobs import STATES
    from serving.observability import record_job_state
    record_job_state("queued")
    text = client.get("/metrics").text
    in_state = {s.labels["state"]: s.value for f in text_string_to_metric_families(text)
                for s in f.samples if s.name == "bip_jobs_in_state"}
    assert in_state == {state: 0 for state in STATES}  # from the job store, no job submitted here

    def added(name, **labels):
        return _sample(text, name, **labels) - _sample(before, name, **labels)
    assert added("bip_http_requests_total", route="/v1/score", status="200") == 6
    assert added("bip_http_requests_total", route="/v1/citizens/{person_id}/score", status="200") == 1
    assert added("bip_http_requests_total", route="/v1/score", status="401") == 1
    assert added("bip_http_request_duration_seconds_count", route="/v1/score") == 8  # 6 + 422 + 401
    assert added("bip_scores_total") == 7
    assert added("bip_input_problems_total", kind="indicator_rating") == 1
    assert added("bip_jobs_total", state="queued") == 1
    assert _sample(text, "bip_model_info", version="1") == 1
    assert people[0] not in text

    assert client.get("/v1/monitoring", headers=caseworker).status_code == 403
    report = client.get("/v1/monitoring", headers=evaluator).json()
    assert report["available"] and report["model"]["version"] == "1" and report["n"] == 7
    assert set(report["indicators"]) == set(small_tables["measurements"].columns[4:])
    assert report["thresholds"] == {"psi_watch": 0.1, "psi_act": 0.25, "p_value": 0.01, "min_count": 5}
    assert 0.5 < report["estimated_performance"]["roc_auc"] <= 1
    assert _sample(client.get("/metrics").text, "bip_estimated_performance", metric="n") == 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_add_up_over_two_uvicorn_workers(serving_store, small_tables, tmp_path):
    from features.sources import citizen_body
    from serving.keys import add_key
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "MLFLOW_TRACKING_URI": serving_store,
           "BIP_KEYS_FILE": str(tmp_path / "keys.json"), "BIP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
           "BIP_AUDIT_SALT_FILE": str(tmp_path / "salt"), "BIP_RELOAD_INTERVAL_S": "0",
           "BIP_JOBS_DIR": str(tmp_path / "jobs"),
           "BIP_MONITORING_DB": str(tmp_path / "monitoring.sqlite"), "BIP_MONITORING_FLUSH_S": "0",
           "BIP_DRIFT_MIN_COUNT": "5", "OMP_NUM_THREADS": "1"}
    key = add_key(tmp_path / "keys.json", "admin")[1]
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "serving.main:create_app", "--factory",
                               "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"),
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            time.sleep(0.5)
        else:
            pytest.fail("the service did not become ready")
        people = small_tables["persons"]["person_id"].head(20).tolist()
        for person in people:  # a new connection each: the workers share the listening socket
            answer = httpx.post(f"{base}/v1/score", json=citizen_body(small_tables, person),
                                headers={"X-API-Key": key, "Connection": "close"}, timeout=30)
            assert answer.status_code == 200, answer.text
        # every worker writes its own files; each loaded the model and set its model-info gauge
        pids = {path.stem.rsplit("_", 1)[-1] for path in multiproc.glob("*.db")}
        assert len(pids) >= 2, sorted(p.name for p in multiproc.glob("*.db"))
        for _ in range(4):  # whichever worker answers, the sums are the same
            text = httpx.get(f"{base}/metrics", headers={"Connection": "close"}).text
            assert _sample(text, "bip_http_requests_total", route="/v1/score", status="200") == len(people)
            assert _sample(text, "bip_scores_total") == len(people)
            assert _sample(text, "bip_http_request_duration_seconds_count", route="/v1/score") == len(people)
            assert _sample(text, "bip_model_info", version="1") == 1
        monitoring = httpx.get(f"{base}/v1/monitoring", headers={"X-API-Key": key}).json()
        assert monitoring["n"] == len(people)  # the window is shared too
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
