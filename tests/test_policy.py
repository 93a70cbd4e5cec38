"""Which intervention for whom (evaluation.policy): a known best rule is recovered, capacities
hold, bad parameters get clear errors, and on a simulated cohort the rule is compared with the
simulator's counterfactuals."""

import json

import numpy as np
import pandas as pd
import pytest

from bip.config import Settings
from evaluation.estimate import EvaluationInputError
from evaluation.policy import NONE, apply_capacity, learn_policy, learn_rule, true_values
from features.contract import ACTIVITY_KINDS

K1, K2 = ACTIVITY_KINDS[0], ACTIVITY_KINDS[1]


def _randomized_table(n: int, seed: int):
    """Arms at random; K1 helps only those rated <= 2 on 'health', K2 only those rated > 2."""
    rng = np.random.default_rng(seed)
    health = rng.integers(1, 6, n).astype(float)
    other = rng.integers(1, 6, n).astype(float)
    arm = rng.choice([NONE, K1, K2], n, p=[0.5, 0.25, 0.25])
    p = {NONE: np.full(n, 0.15), K1: 0.15 + 0.35 * (health <= 2), K2: 0.15 + 0.35 * (health > 2)}
    y = (rng.random(n) < np.choose([[NONE, K1, K2].index(a) for a in arm], [p[NONE], p[K1], p[K2]])).astype(int)
    table = pd.DataFrame({"person_id": [f"p{i}" for i in range(n)], "as_of": pd.Timestamp("2024-01-01"),
                          "health__cw_level": health, "other__cw_level": other, "job_12m": y})
    for k in ACTIVITY_KINDS[:2]:
        table[f"eligible__{k}"] = True
        table[f"treated__{k}"] = (arm == k).astype(int)
    truth = table[["person_id", "as_of"]].assign(**{f"p_12m_{a}": p[a] for a in (NONE, K1, K2)})
    return table, table[["health__cw_level", "other__cw_level"]].to_numpy(dtype=np.float32), truth


def test_a_known_best_rule_is_recovered_and_its_value_covered():
    table, X, truth = _randomized_table(4000, 3)
    policy = learn_policy(table, X, "job_12m", [K1, K2], depth=2, seed=1, settings=Settings(evaluation_folds=2))
    final = policy["_assigned_final"]
    best = np.where(table["health__cw_level"] <= 2, K1, K2)
    assert (final == best).mean() >= 0.99, policy["rule"]["leaves"]
    assert policy["rule"]["feature"] == "health__cw_level" or all(
        leaf["conditions"][-1].startswith("health__cw_level") for leaf in policy["rule"]["leaves"])
    checked = true_values(policy, truth)
    assert checked["covered"], (policy["value"]["learned_rule"], checked["crossfit_rule"])
    assert checked["regret"] == pytest.approx(0.0, abs=0.005)
    # the rule beats current practice (random arms: 0.15 + 0.35 * 0.25 on average) and the best single programme
    gain = policy["gain_over_current_practice"]
    assert gain["ci_low"] > 0 and checked["gain_over_current_practice"] > 0.2
    assert policy["value"]["learned_rule"]["value"] > policy["value"]["best_single_programme"]["value"]


def test_a_rule_without_heterogeneity_splits_nothing_that_matters():
    """Depth-1 search on pure noise: whatever it picks, its true regret is small (no false gain)."""
    table, X, truth = _randomized_table(3000, 5)
    truth[f"p_12m_{K1}"] = truth[f"p_12m_{K2}"] = truth[f"p_12m_{NONE}"] = 0.15
    frame = table.assign(arm=np.where(table[f"treated__{K1}"] == 1, K1, np.where(table[f"treated__{K2}"] == 1, K2, NONE)))
    gamma = np.stack([np.full(len(frame), 0.15)] * 3, axis=1)
    rule = learn_rule(frame, gamma, [NONE, K1, K2], ["health__cw_level", "other__cw_level"], depth=1)
    assert rule.feature is None   # ties: no split adds value


def test_capacity_gives_places_to_the_largest_estimated_effects():
    assigned = np.array([K1] * 6 + [NONE] * 4, dtype=object)
    effect = np.array([0.1, 0.5, 0.3, 0.2, 0.9, 0.0, 1, 1, 1, 1])
    out = apply_capacity(assigned, {K1: effect}, {K1: 2})
    assert list(np.flatnonzero(out == K1)) == [1, 4]
    assert (apply_capacity(assigned, {K1: effect}, {K1: 0.3}) == K1).sum() == 3   # a share of the rows


def test_learned_rule_respects_capacity():
    table, X, _ = _randomized_table(3000, 7)
    policy = learn_policy(table, X, "job_12m", [K1, K2], capacity={K2: 200}, seed=2,
                          settings=Settings(evaluation_folds=2))
    assert (policy["_assigned_final"] == K2).sum() <= 200
    assert (policy["_assigned_crossfit"] == K2).sum() <= 2 * 200   # each half within its places


@pytest.mark.parametrize("capacity, depth, field", [
    ({"kurser": 10}, 2, "capacity"),
    ({K1: -1}, 2, f"capacity.{K1}"),
    ({K1: float("nan")}, 2, f"capacity.{K1}"),
    ({K1: 10_000_000}, 2, f"capacity.{K1}"),
    ({K1: 2.5}, 2, f"capacity.{K1}"),            # places are whole; a share is below 1
    (None, 3, "depth"),
])
def test_bad_policy_parameters_get_clear_errors(capacity, depth, field):
    table, X, _ = _randomized_table(400, 1)
    with pytest.raises(EvaluationInputError) as error:
        learn_policy(table, X, "job_12m", [K1, K2], capacity=capacity, depth=depth)
    assert error.value.to_dict()["field"] == field


def test_unknown_kind_is_refused():
    table, X, _ = _randomized_table(400, 1)
    with pytest.raises(EvaluationInputError, match="kind"):
        learn_policy(table, X, "job_12m", ["kurser"])


def test_cli_policy_errors_are_clear(small_cohort_dir, tmp_path):
    from typer.testing import CliRunner

    from cli.app import app
    runner = CliRunner()
    for capacity, says in (("mentor", "kind=places"), ("kurser=3", "kurser"), (f"{K1}=99999999", "decision points")):
        result = runner.invoke(app, ["evaluate", "--data", str(small_cohort_dir), "--out", str(tmp_path / "o"),
                                     "--policy", "--capacity", capacity, "--no-log", "--quiet"])
        assert result.exit_code == 2, result.output
        assert says in result.output, result.output
    result = runner.invoke(app, ["evaluate-check", "--policy", "--capacity", "x=1", "--seeds", "1"])
    assert result.exit_code == 2 and "capacity" in result.output


def test_policy_on_a_simulated_cohort_in_the_report_and_against_the_truth(small_cohort_dir, tmp_path):
    from evaluation.estimate import write_outputs
    from evaluation.run import evaluate
    from features.tables import read_tables
    result = evaluate(read_tables(small_cohort_dir), kind="all", progression=False, seed=3,
                      policy={"capacity": {"mentor": 0.05}, "depth": 2},
                      settings=Settings(sensitivity=False, evaluation_repeats=1))
    policy = result["policy"]
    assert policy["decision_points"] > 1000 and (policy["_assigned_final"] == "mentor").mean() <= 0.05
    v = policy["value"]
    for name in ("learned_rule", "current_practice", "treat_nobody", "best_single_programme"):
        assert v[name]["ci_low"] <= v[name]["value"] <= v[name]["ci_high"]
    truth = true_values(policy, pd.read_parquet(small_cohort_dir / "truth_policy.parquet"))
    assert truth["best_same_depth_rule"] >= truth["final_rule"] - 1e-12   # the oracle rule is the best of its depth
    assert abs(truth["current_practice"] - v["current_practice"]["value"]) < 4 * v["current_practice"]["se"]
    public = write_outputs(result, tmp_path / "ev")
    assert "policy" in public and "_frame" not in public["policy"]
    json.dumps(public)
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "Hvilken indsats til hvem" in html and "Which intervention for whom" in html
    assert "ikke en anvisning for den enkelte borger" in html
