"""Intervention evaluation: the estimator against known effects, bad input, BIP mode, CLI, API."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from evaluation.estimate import EvaluationInputError, estimate_effect


def confounded_cohort(n=4000, seed=3, effect=0.8):
    """Treatment more likely for the more ready (x1); a known true ATT from the potential outcomes."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east"], size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 1.2 * x1 + 0.3 * (region == "north"))))).astype(int)
    base = -1.5 + 1.0 * x1 + 0.5 * x2 - 0.4 * (region == "south")
    p0, p1 = 1 / (1 + np.exp(-base)), 1 / (1 + np.exp(-(base + effect)))
    y = (rng.random(n) < np.where(t == 1, p1, p0)).astype(int)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "region": region, "treated": t, "job": y})
    return frame, float((p1 - p0)[t == 1].mean()), float(p1.mean() - p0.mean())


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_interval_covers_the_true_effect_and_the_naive_difference_misses(estimand):
    frame, att, ate = confounded_cohort()
    truth = att if estimand == "ATT" else ate
    result = estimate_effect(frame, "treated", "job", ["x1", "x2", "region"], estimand, seed=1, subgroups=["region"])
    assert result["ci_low"] <= truth <= result["ci_high"]
    assert result["ci_high"] - result["ci_low"] < 0.12
    assert not (result["naive"]["ci_low"] <= truth <= result["naive"]["ci_high"])   # confounded
    assert result["naive"]["estimate"] > result["estimate"]
    d = result["diagnostics"]
    assert d["max_abs_smd_after"] < d["max_abs_smd_before"] and d["max_abs_smd_before"] > 0.5
    assert {s["value"] for s in result["subgroups"]} == {"north", "south", "east"}


@pytest.mark.parametrize("change, field", [
    (lambda f: f.drop(columns="x2"), "covariates"),
    (lambda f: f.assign(treated=f["treated"] * 2), "treatment"),
    (lambda f: f.assign(treated=np.r_[np.ones(5, int), np.zeros(len(f) - 5, int)]), "treatment"),
    (lambda f: f.assign(job=f["job"].astype(float).where(f.index > 3)), "outcome"),
])
def test_bad_input_is_a_clear_error(change, field):
    frame, _, _ = confounded_cohort(n=600)
    with pytest.raises(EvaluationInputError) as error:
        estimate_effect(change(frame), "treated", "job", ["x1", "x2"], "ATT")
    assert error.value.field == field and error.value.allowed


def test_no_overlap_is_refused():
    frame, _, _ = confounded_cohort(n=2000)
    frame["treated"] = (frame["x1"] > 0.3).astype(int)   # assignment fully determined by x1
    with pytest.raises(EvaluationInputError, match="overlap|at least"):
        estimate_effect(frame, "treated", "job", ["x1"], "ATE")


def test_cli_generic_mode_writes_json_and_report(tmp_path):
    frame, att, _ = confounded_cohort(n=2000)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    result = CliRunner().invoke(app, ["evaluate", "--cohort", str(tmp_path / "cohort.csv"), "--treatment", "treated",
                                      "--outcome", "job", "--covariates", "x1,x2,region", "--no-log",
                                      "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    evaluation = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    for key in ("estimand", "estimate", "ci_low", "ci_high", "n_treated", "n_control", "method", "diagnostics"):
        assert key in evaluation
    for key in ("propensity_overlap", "share_trimmed", "balance", "warnings"):
        assert key in evaluation["diagnostics"]
    report = (tmp_path / "ev" / "report.html").read_text()
    assert report.count("<img") >= 2 and "Naive difference" in report and "Naiv forskel" in report
    assert "procentpoint" in report and "percentage points" in report
    bad = CliRunner().invoke(app, ["evaluate", "--cohort", str(tmp_path / "cohort.csv"), "--treatment", "nope",
                                   "--outcome", "job", "--no-log", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "nope" in bad.output


def randomized_trial(n=2000, seed=7, effect=0.6):
    """A lottery: treatment independent of the covariates; the true effect from the potential outcomes."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    t = (rng.random(n) < 0.4).astype(int)
    base = -1.0 + 0.8 * x1 - 0.5 * x2
    p0, p1 = 1 / (1 + np.exp(-base)), 1 / (1 + np.exp(-(base + effect)))
    y = (rng.random(n) < np.where(t == 1, p1, p0)).astype(int)
    frame = pd.DataFrame({"participant_id": [f"P{i:05d}" for i in range(n)], "row": np.arange(n),
                          "x1": x1, "x2": x2, "lottery": t, "job": y})
    return frame, float((p1 - p0).mean())


def test_generic_mode_leaves_out_id_like_columns_and_lists_them():
    from evaluation.run import evaluate
    frame, _, _ = confounded_cohort(n=800)
    frame["person_id"] = [f"p{i}" for i in range(len(frame))]
    frame["record"] = np.arange(len(frame)) * 7            # an integer unique in every row
    result = evaluate(cohort=frame, treatment="treated", outcome="job")
    assert {e["column"] for e in result["excluded_covariates"]} == {"person_id", "record"}
    assert set(result["covariates"]) == {"x1", "x2", "region"}       # continuous x1, x2 kept
    assert all(e["reason"] for e in result["excluded_covariates"])


def test_randomized_trial_covers_its_effect_with_the_randomized_wording(tmp_path):
    frame, truth = randomized_trial()
    frame.to_csv(tmp_path / "trial.csv", index=False)
    result = CliRunner().invoke(app, ["evaluate", "--cohort", str(tmp_path / "trial.csv"), "--treatment", "lottery",
                                      "--outcome", "job", "--design", "randomized", "--estimand", "ATE",
                                      "--no-log", "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    evaluation = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert evaluation["design"] == "randomized" and evaluation["ci_low"] <= truth <= evaluation["ci_high"]
    assert {e["column"] for e in evaluation["excluded_covariates"]} == {"participant_id", "row"}
    assert evaluation["diagnostics"]["balance_test"]["imbalanced"] == []
    report = (tmp_path / "ev" / "report.html").read_text()
    assert "Randomiseret forsøg" in report and "Randomized trial" in report
    assert "Observationsdata" not in report and "not random" not in report


@pytest.mark.parametrize("outcome", ["treated", "copy"])
def test_outcome_equal_to_the_treatment_is_refused(outcome):
    from evaluation.run import evaluate
    frame, _, _ = confounded_cohort(n=600)
    frame["copy"] = frame["treated"]
    with pytest.raises(EvaluationInputError) as error:
        evaluate(cohort=frame, treatment="treated", outcome=outcome, covariates=["x1", "x2"])
    assert error.value.field == "outcome" and "treatment" in error.value.allowed


def test_constant_outcome_is_refused():
    from evaluation.run import evaluate
    frame, _, _ = confounded_cohort(n=600)
    with pytest.raises(EvaluationInputError, match="varies"):
        evaluate(cohort=frame.assign(job=1), treatment="treated", outcome="job", covariates=["x1"])


def test_all_kinds_once_logged_published_and_served_by_band(small_tables, schema, tmp_path, monkeypatch):
    from bip.config import Settings
    from evaluation.run import evaluate
    from evaluation.tracking import log_evaluation, publish_evaluation, published_effects
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    settings = Settings(evaluation_folds=2, variance_splits=0)      # small and quick: the plumbing is tested here
    steps = []
    result = evaluate(small_tables, kind="all", schema=schema, progression=False, settings=settings,
                      progress=lambda fraction, message: steps.append(fraction))
    assert set(result["kinds"]) == {"virksomhedspraktik", "loentilskud", "mentor", "opkvalificering",
                                    "sundhed_social"}
    assert steps == sorted(steps) and steps[-1] == 1.0
    assert published_effects(settings) is None
    run_id = log_evaluation(result, settings=settings)
    publish_evaluation(run_id, settings)
    served = published_effects(settings)
    assert served["run_id"] == run_id and served["horizon_months"] == 12
    praktik = served["kinds"]["virksomhedspraktik"]
    assert set(praktik["by_band"]) <= {"low", "middle", "high"} and praktik["by_band"]
    band = next(iter(praktik["by_band"].values()))
    assert band["ci_low_points"] <= band["effect_points"] <= band["ci_high_points"]
    assert praktik["overall"]["effect_points"] == pytest.approx(
        100 * result["kinds"]["virksomhedspraktik"]["estimate"])


def test_bip_mode_builds_an_as_of_start_cohort_and_estimates(small_tables, small_cohort_dir, schema):
    from evaluation.bip_mode import build_intervention_cohort
    from evaluation.run import compare_with_truth, evaluate_intervention
    cohort = build_intervention_cohort(small_tables, schema, "loentilskud")
    assert (cohort["activity__loentilskud__active"] == 0).all()        # only the eligible
    treated = cohort[cohort["treated"] == 1]
    starts = small_tables["activities"].query("kind == 'loentilskud'")
    merged = treated[["person_id", "as_of"]].reset_index().merge(starts, on="person_id")
    starts_in_window = (merged["start"] - merged["as_of"]).dt.days.between(0, 30)
    assert len(treated) > 20 and starts_in_window.groupby(merged["index"]).any().all()
    result = evaluate_intervention(small_tables, schema, "loentilskud", seed=0)
    truth = compare_with_truth(result, small_cohort_dir / "truth.json", 12)
    assert abs(result["estimate"] - truth["true_att_12m"]) < 4 * result["se"] + 0.02
    assert {s["group"] for s in result["subgroups"]} == {"jobcenter", "age_band", "readiness_band"}
    assert any(k.startswith("change_caseworker_belief_3m") for k in result["progression"])


def test_truth_check_rows_and_known_limits_for_the_report(tmp_path):
    """`bip evaluate-check` on two small seeds in two processes: one row per kind with its truth, and the known
    limits it writes are what the report turns into a warning."""
    from evaluation.check import check_command
    out, limits = tmp_path / "check.csv", tmp_path / "limits.json"
    check_command(seeds=2, first_seed=3, persons=600, out=str(out), limits=str(limits), workers=2, quiet=True)
    rows = pd.read_csv(out)
    assert set(rows["kind"]) <= {"virksomhedspraktik", "loentilskud", "mentor", "opkvalificering", "sundhed_social"}
    assert len(rows) >= 3 and (rows["ci_low"] <= rows["estimate"]).all() and (rows["estimate"] <= rows["ci_high"]).all()
    assert (rows["covered"] == ((rows["ci_low"] <= rows["truth"]) & (rows["truth"] <= rows["ci_high"]))).all()
    written = json.loads(limits.read_text())
    for kind, group in rows.groupby("kind"):
        assert written[kind]["coverage"] == round(float(group["covered"].mean()), 3)
        assert written[kind]["seeds"] == 2 and f"{int(group['covered'].sum())} af 2" in written[kind]["note_da"]
    assert sorted(rows["seed"].unique()) == [3, 4]   # both seeds, from two worker processes


def test_progression_outcome_with_its_own_missing_rows_is_fitted_like_the_others():
    """A change_* column observed on rows no other one shares (e.g. the score's change, or a rating
    missing at one follow-up) is a group of one: its ridge fit has a single target column and gives
    the same estimate as fitting it alone."""
    from bip.config import Settings
    from evaluation.aipw import Nuisances, aipw, cross_fit_linear_outcome
    from evaluation.run import _progression_effects
    rng = np.random.default_rng(0)
    n = 1200
    X = rng.normal(size=(n, 4))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    clusters = (np.arange(n) // 3).astype(str)
    shared, own = rng.random(n) < 0.7, rng.random(n) < 0.6
    cohort = pd.DataFrame({"change_a_3m": np.where(shared, X[:, 1] + 0.3 * t, np.nan),
                           "change_b_3m": np.where(shared, X[:, 2] - 0.2 * t, np.nan),
                           "change_score_3m": np.where(own, X[:, 3] + 0.1 * t, np.nan)})
    e = np.clip(1 / (1 + np.exp(-X[:, 0])), 0.02, 0.98)
    nuisances = Nuisances(e, np.zeros(n), np.zeros(n), e <= 0.98)
    out = _progression_effects(cohort, X, t, clusters, nuisances, "ATT", 1, Settings())
    assert list(out) == ["change_a_3m", "change_b_3m", "change_score_3m"]
    y = cohort.loc[own, "change_score_3m"].to_numpy()
    mu0, mu1 = cross_fit_linear_outcome(X[own], t[own], y, clusters[own], 1, Settings().evaluation_folds)
    alone = aipw(y, t[own], Nuisances(e[own], mu0, mu1, nuisances.kept[own]), clusters[own], "ATT")
    assert out["change_score_3m"]["estimate"] == pytest.approx(alone.estimate, abs=1e-10)
