"""MLflow: log, register, promote, roll back, load by alias, score offline."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bip.cli import app


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
    from models.store import CHAMPION_URI, load_scoring_model
    from training.tracking import champion_version
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
    np.testing.assert_allclose(pyfunc.predict(features)["probability"].to_numpy(),
                               model.probability(features.to_numpy()))


def test_promote_and_roll_back(trained):
    from training.tracking import champion_version
    runner = CliRunner()
    result = runner.invoke(app, ["promote", "2"])
    assert result.exit_code == 0, result.output
    assert champion_version() == "2"
    result = runner.invoke(app, ["promote", "1"])
    assert result.exit_code == 0 and champion_version() == "1"
    result = runner.invoke(app, ["promote", "99"])
    assert result.exit_code != 0 and "no version 99" in result.output
    assert champion_version() == "1"


def test_promote_if_better_compares_on_the_same_data(trained, small_cohort_dir):
    from training.tracking import champion_version
    from training.train import train
    again = train(small_cohort_dir, "logistic", 12, promote_if_better=True, seed=7)
    assert again["champion_log_loss_same_data"] == pytest.approx(
        trained[0]["models"]["xgboost"]["test"]["log_loss"], rel=1e-6)
    better = again["models"]["logistic"]["test"]["log_loss"] < again["champion_log_loss_same_data"]
    assert again["promoted"] == better
    assert champion_version() == (again["registered_version"] if better else "1")
    from training.tracking import promote
    promote("1")


def test_runs_lists_models_side_by_side(trained):
    result = CliRunner().invoke(app, ["runs"])
    assert result.exit_code == 0
    assert "xgboost" in result.output and "logistic" in result.output and "*" in result.output


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
    assert {"person_id", "as_of", "probability", "model_version", "base_value",
            "contribution__caseworker_belief"} <= set(scores.columns)
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
    assert invalid.exit_code == 2 and "measurements.parquet row 4, column 'job_search': value 9" in invalid.output  # rows from 1
