"""MLflow: log, register, promote like for like with a stability report, roll back, load by alias,
score offline, the curve through the API."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlruns")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
        yield folder


@pytest.fixture(scope="module")
def trained(store, small_cohort_dir):
    from training.train import train
    first = train(small_cohort_dir, "xgboost", 12, register=False, promote_if_better=True, seed=7)
    second = train(small_cohort_dir, "logistic", 12, register=True, promote_if_better=False, seed=7)
    return first, second


def test_first_model_becomes_champion_and_loads_by_alias(trained, small_cohort_dir, small_tables):
    from models.store import CHAMPION_URI, champion_version, load_scoring_model
    first, second = trained
    assert first["registered_version"] == "1" and first["promoted"]
    assert second["registered_version"] == "2" and not second["promoted"]
    assert champion_version() == "1"
    champion = load_scoring_model(CHAMPION_URI)
    assert champion.kind == "xgboost" and champion.metadata["run_id"] == first["models"]["xgboost"]["run_id"]
    requests = small_tables["measurements"][["person_id", "measured_at"]].drop_duplicates().head(50)
    requests = requests.rename(columns={"measured_at": "as_of"})
    scored = champion.score_frame(requests, small_tables)
    assert scored["probability"].between(0, 1).all()


def test_pyfunc_scores_feature_rows_like_the_object(trained, small_tables):
    import mlflow.pyfunc

    from models.store import CHAMPION_URI, load_scoring_model
    model = load_scoring_model(CHAMPION_URI)
    requests = small_tables["measurements"][["person_id", "measured_at"]].drop_duplicates().head(20)
    features = model.features(requests.rename(columns={"measured_at": "as_of"}), small_tables)
    pyfunc = mlflow.pyfunc.load_model(CHAMPION_URI)
    predicted = pyfunc.predict(features)
    np.testing.assert_allclose(predicted["probability"].to_numpy(), model.probability(features.to_numpy()))
    for horizon in model.horizons:
        np.testing.assert_allclose(predicted[f"probability_{horizon}m"].to_numpy(),
                                   model.probability(features.to_numpy(), horizon))


def test_promote_and_roll_back(trained):
    from models.store import champion_version
    runner = CliRunner()
    result = runner.invoke(app, ["promote", "2", "--reason", "logistic for a trial"])
    assert result.exit_code == 0, result.output
    assert champion_version() == "2" and "stability on" in result.output and "lowest decile overlap" in result.output
    result = runner.invoke(app, ["promote", "1", "--reason", "roll back"])
    assert result.exit_code == 0 and champion_version() == "1"
    result = runner.invoke(app, ["promote", "99"])
    assert result.exit_code != 0 and "no version 99" in result.output
    assert champion_version() == "1"


def test_promote_if_better_compares_on_the_same_data_per_horizon(trained, small_cohort_dir):
    from models.store import champion_version, promote
    from training.train import train
    again = train(small_cohort_dir, "logistic", 12, promote_if_better=True, seed=7)
    comparison = again["promotion"].comparison
    assert set(comparison) == {3, 6, 12, 24}
    for horizon, losses in comparison.items():  # the champion re-scored on the same occasions
        assert losses["champion"] == pytest.approx(
            trained[0]["models"]["xgboost"]["horizons"][horizon]["test"]["log_loss"], rel=1e-6)
        assert losses["challenger"] == pytest.approx(
            again["models"]["logistic"]["horizons"][horizon]["test"]["log_loss"], rel=1e-6)
    better = comparison[12]["challenger"] < comparison[12]["champion"]
    if not better:
        assert not again["promoted"] and "not better" in again["refused"]
    assert champion_version() == (again["registered_version"] if again["promoted"] else "1")
    promote("1")


def test_a_6_month_model_is_not_promoted_over_the_12_month_champion(trained, small_cohort_dir):
    from models.store import champion_version
    from training.train import format_summary, train
    six = train(small_cohort_dir, "xgboost", 6, promote_if_better=True, seed=7, horizons=[6])
    assert not six["promoted"] and champion_version() == "1"
    assert "not like for like" in six["refused"]
    assert "horizon set {6m} differs from the champion's {3m, 6m, 12m, 24m}" in six["refused"]
    assert "probability is at 6 months, the champion's at 12 months" in six["refused"]
    assert "champion unchanged (version 1)" in format_summary(six)
    version = six["registered_version"]
    runner = CliRunner()
    refused = runner.invoke(app, ["promote", version])
    assert refused.exit_code == 1 and "not like for like" in refused.output and "--force" in refused.output
    assert champion_version() == "1"
    forced = runner.invoke(app, ["promote", version, "--force"])
    assert forced.exit_code == 0 and champion_version() == version, forced.output
    import mlflow
    runs = mlflow.search_runs(experiment_names=["bip-employment"], filter_string="tags.`bip.role` = 'promotion'")
    last = runs.sort_values("start_time").iloc[-1]
    assert last["tags.bip.forced"] == "True" and last["tags.bip.promoted_version"] == version
    assert "probability is at 6 months" in last["tags.bip.unlike"]
    assert runner.invoke(app, ["promote", "1", "--force"]).exit_code == 0 and champion_version() == "1"


def test_runs_compare_prints_both_versions_and_the_stability_report(trained):
    result = CliRunner().invoke(app, ["runs", "--compare", "1", "2"])
    assert result.exit_code == 0, result.output
    assert "version 1: xgboost" in result.output and "version 2: logistic" in result.output
    assert "like for like" in result.output and "band changed" in result.output
    assert "jobcenter=" in result.output and "age_band=" in result.output
    assert CliRunner().invoke(app, ["runs", "--compare", "1", "99"]).exit_code != 0


def test_runs_and_versions_carry_horizons_schema_and_data(trained):
    import mlflow
    from mlflow import MlflowClient
    first, _ = trained
    run = MlflowClient().get_run(first["models"]["xgboost"]["run_id"])
    assert run.data.tags["bip.horizons"] == "3,6,12,24" and run.data.tags["bip.schema"] == "bip11"
    assert run.data.tags["bip.data_fingerprint"] == first["context"]["fingerprint"]
    assert run.info.run_name.startswith("xgboost h3-6-12*-24m data-")
    assert run.data.params["config.horizons"] == "[3, 6, 12, 24]"
    assert "h3m_test_roc_auc" in run.data.metrics and "h24m_test_ece" in run.data.metrics
    version = MlflowClient().get_model_version("bip-employment", "1")
    assert version.tags["bip.horizons"] == "3,6,12,24" and version.tags["bip.default_horizon"] == "12"
    assert version.tags["bip.schema"] == "bip11"
    experiment = mlflow.get_experiment_by_name("bip-employment")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_stability_report_on_a_known_pair_of_models(trained, small_tables):
    """Challenger = champion with every head's log-odds raised by 0.4: the probabilities are
    known exactly, only upward band moves are possible, the ranking (and so both decile sets)
    is the same, and no top reason changes (only the base value moves)."""
    import copy

    from features.build import latest_occasions
    from models.scoring import sigmoid
    from models.stability import stability_report
    from models.store import CHAMPION_URI, load_scoring_model
    champion = load_scoring_model(CHAMPION_URI)
    challenger = copy.deepcopy(champion)
    for head in challenger.heads:
        head.calibration = (head.calibration[0], head.calibration[1] + 0.4)
    requests = latest_occasions(small_tables["measurements"])
    report = stability_report(champion, challenger, requests, small_tables, (0.05, 0.15))
    p0 = champion.probability(champion.features(requests, small_tables).to_numpy())
    p1 = sigmoid(np.log(p0 / (1 - p0)) + 0.4)
    b0, b1 = np.searchsorted([0.05, 0.15], p0, side="right"), np.searchsorted([0.05, 0.15], p1, side="right")
    assert report["n"] == len(requests) == small_tables["persons"]["person_id"].nunique()
    assert report["band_changed"] == pytest.approx(np.mean(b1 != b0)) and report["band_changed"] > 0.02
    assert report["band_up"] == report["band_changed"] and report["band_down"] == 0
    assert report["band_moves"]["low->middle"] == int(((b0 == 0) & (b1 == 1)).sum())
    assert report["mean_abs_change_pp"] == pytest.approx(100 * np.mean(p1 - p0), rel=1e-9)
    assert report["lowest_decile_overlap"] == 1.0 and report["highest_decile_overlap"] == 1.0
    assert report["top_reason_changed"] == 0.0
    women = (small_tables["persons"].set_index("person_id").loc[requests["person_id"], "gender"] == "female").to_numpy()
    assert report["groups"]["gender"]["female"]["n"] == women.sum()
    assert report["groups"]["gender"]["female"]["band_changed"] == pytest.approx(np.mean(b1[women] != b0[women]))
    # a challenger that reverses the ranking: the lowest decile becomes the highest, no overlap left
    reversed_ = copy.deepcopy(champion)
    for head in reversed_.heads:
        head.calibration = (-head.calibration[0], -head.calibration[1])
    flipped = stability_report(champion, reversed_, requests, small_tables, (0.05, 0.15))
    assert flipped["lowest_decile_overlap"] == 0.0 and flipped["highest_decile_overlap"] == 0.0


def test_runs_lists_models_side_by_side(trained):
    result = CliRunner().invoke(app, ["runs"])
    assert result.exit_code == 0
    assert "xgboost" in result.output and "logistic" in result.output and "*" in result.output
    assert "3,6,12,24" in result.output


@pytest.mark.parametrize("at", ["latest", "every"])
def test_score_command(trained, small_cohort_dir, small_tables, tmp_path, at):
    out = tmp_path / f"scores_{at}.parquet"
    args = ["score", "--data", str(small_cohort_dir), "--out", str(out), "--at", at, "--explain"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(out)
    occasions = small_tables["measurements"][["person_id", "measured_at"]].drop_duplicates()
    expected = occasions["person_id"].nunique() if at == "latest" else len(occasions)
    assert len(scores) == expected
    assert {"person_id", "as_of", "probability", "model_version", "base_value", "probability_3m", "probability_6m",
            "probability_12m", "probability_24m", "interval_low", "interval_high",
            "contribution__caseworker_belief"} <= set(scores.columns)
    curve = scores[["probability_3m", "probability_6m", "probability_12m", "probability_24m"]].to_numpy()
    assert (np.diff(curve, axis=1) >= 0).all()
    np.testing.assert_allclose(scores["probability"], scores["probability_12m"], rtol=0, atol=1e-12)
    assert (scores["interval_low"] <= scores["probability_12m"] + 1e-12).all()
    assert (scores["probability_12m"] <= scores["interval_high"] + 1e-12).all()
    assert (scores["model_version"] == "1").all()
    logit = np.log(scores["probability"] / (1 - scores["probability"]))
    parts = scores.filter(like="contribution__").sum(axis=1) + scores["base_value"]
    np.testing.assert_allclose(parts, logit, atol=1e-6)


def test_cli_bad_input_ends_with_the_problem_not_a_traceback(tmp_path, small_tables):
    runner = CliRunner()
    missing = runner.invoke(app, ["train", "--data", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "has no persons" in missing.output
    bad = tmp_path / "bad"
    bad.mkdir()
    for name, table in small_tables.items():
        table = table.copy()
        if name == "measurements":
            table.loc[3, "job_search"] = 9
        table.to_parquet(bad / f"{name}.parquet")
    invalid = runner.invoke(app, ["score", "--data", str(bad), "--out", str(tmp_path / "s.parquet")])
    # Parquet rows are numbered from 1 (row 3 of the frame is the file's 4th row)
    assert invalid.exit_code == 2 and "measurements.parquet row 4, column 'job_search': value 9" in invalid.output


def test_score_route_answers_the_curve(trained, small_tables, tmp_path):
    """Through the API client: `probability` and `interval` at 12 months, and the curve."""
    from fastapi.testclient import TestClient

    from bip.config import Settings
    from features.sources import citizen_body
    from serving.keys import add_key
    from serving.main import create_app
    settings = Settings(keys_file=tmp_path / "keys.json", audit_log=tmp_path / "audit.jsonl",
                        audit_salt_file=tmp_path / "salt", jobs_dir=tmp_path / "jobs",
                        monitoring_db=tmp_path / "monitoring.sqlite", reload_interval_s=0)
    key = add_key(settings.keys_file, "caseworker")[1]
    person = small_tables["measurements"]["person_id"].value_counts().index[0]
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/score", json=citizen_body(small_tables, person), headers={"X-API-Key": key}).json()
    curve = answer["curve"]
    assert [point["horizon_months"] for point in curve] == [3, 6, 12, 24]
    probabilities = [point["probability"] for point in curve]
    assert probabilities == sorted(probabilities)
    twelve = curve[2]
    assert answer["horizon_months"] == 12
    assert answer["probability"] == pytest.approx(twelve["probability"], abs=1e-12)
    assert answer["interval"]["low"] == pytest.approx(twelve["interval"]["low"], abs=1e-12)
    for point in curve:
        assert point["interval"]["low"] <= point["probability"] <= point["interval"]["high"]


# one process opening a new store, as a server worker or a job does at start; all begin at `go`
_OPEN_STORE = """
import sys, time
from mlflow import MlflowClient
from models.store import configure_tracking
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
configure_tracking()
MlflowClient().search_experiments(max_results=1)
MlflowClient().search_registered_models(max_results=1)
"""


def test_processes_opening_a_new_store_at_once_leave_it_whole(tmp_path):
    """`bip serve --workers 2` on a new sqlite store: each worker made MLflow's tables and ran its
    migrations at once; they collided and left `_alembic_tmp_*` behind, so the job's MLflow logging
    failed later (bench/national_job.py found it). Three processes opening it at the same instant
    all succeed and the store is whole."""
    import sqlite3
    import subprocess
    import sys
    import time
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    env = {**__import__("os").environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    go = str(time.time() + 8)  # past every process's imports
    processes = [subprocess.Popen([sys.executable, "-c", _OPEN_STORE, go], cwd=root, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    failures = [p.stderr.read()[-500:] for p in processes if p.wait(timeout=120) != 0]
    assert not failures, failures
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        left = db.execute("SELECT name FROM sqlite_master WHERE name LIKE '_alembic_tmp%'").fetchall()
        versions = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert not left and len(versions) == 1
