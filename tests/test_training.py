"""Training: leakage-free splits, censoring per horizon, a curve that never decreases, exact
explanations per horizon, determinism."""

import numpy as np
import pandas as pd
import pytest

from training.pipeline import build_examples, fit_all


@pytest.fixture(scope="module")
def fitted(small_tables, schema):
    return fit_all(small_tables, schema, horizon=12, seed=7)


def test_splits_keep_persons_together_and_time_apart(fitted):
    examples, _ = fitted
    frame = examples.frame
    assert (frame.groupby("person_id")["fold"].nunique() == 1).all()
    assert (frame.loc[examples.test, "as_of"] >= examples.test_from).all()
    assert (frame.loc[examples.train, "as_of"] < examples.test_from).all()
    assert examples.test.sum() > 100 and examples.train.sum() > 1000


def test_only_occasions_with_an_observed_horizon_are_examples(small_tables, schema):
    outcomes = small_tables["outcomes"]
    cut = outcomes[outcomes["month"] <= pd.Timestamp("2016-06-01")]
    examples = build_examples({**small_tables, "outcomes": cut}, schema, 12, test_from="2015-01-01")
    # the window (as_of, as_of + 12 months] must end by the last register month, June 2016
    assert examples.frame["as_of"].max() < pd.Timestamp("2015-07-01")


def test_each_horizon_is_censored_on_its_own(small_tables, schema):
    outcomes = small_tables["outcomes"]
    cut = outcomes[outcomes["month"] <= pd.Timestamp("2016-06-01")]
    examples = build_examples({**small_tables, "outcomes": cut}, schema, (3, 12), test_from="2015-01-01")
    as_of = examples.frame["as_of"]
    # 3 months observed up to March 2016, 12 months only up to June 2015: the later occasions are
    # examples at 3 months and censored (not 0) at 12
    assert as_of[examples.observed(3)].max() >= pd.Timestamp("2016-03-01")
    assert as_of[examples.observed(12)].max() < pd.Timestamp("2015-07-01")
    later = ~examples.observed(12)
    assert later.sum() > 100 and examples.frame.loc[later, "label_12m"].isna().all()
    # where both are observed, a job within 3 months is a job within 12
    both = examples.observed(12)
    assert (examples.y(12)[both] >= examples.y(3)[both]).all()


@pytest.mark.parametrize("kind", ["xgboost", "logistic"])
def test_no_occasion_has_a_decreasing_curve(fitted, kind):
    examples, models = fitted
    model = models[kind].model
    assert model.horizons == [3, 6, 12, 24] and model.horizon_months == 12
    raw = model.raw_log_odds(examples.X)
    assert (np.diff(raw, axis=1) < 0).any()  # the heads alone would cross somewhere
    curve = model.curve_log_odds(examples.X)
    assert (np.diff(curve, axis=1) >= 0).all()
    probabilities = np.stack([model.probability(examples.X, h) for h in model.horizons], axis=1)
    assert (np.diff(probabilities, axis=1) >= 0).all()
    low, high = model.curve_interval(examples.X)
    assert (low <= probabilities + 1e-12).all() and (probabilities <= high + 1e-12).all()


@pytest.mark.parametrize("kind", ["xgboost", "logistic"])
def test_explanation_adds_up_to_the_curve_at_every_horizon(fitted, kind):
    from models.scoring import cumulative_curve
    examples, models = fitted
    model = models[kind].model
    X = examples.X
    source = cumulative_curve(model.raw_log_odds(X))[1]
    assert (source != np.arange(len(model.horizons))).any()  # some rows take a shorter head's value
    for k, horizon in enumerate(model.horizons):
        contributions, base = model.explain(X, horizon)
        assert contributions.shape == (len(X), len(model.groups))
        np.testing.assert_allclose(model.explained_log_odds(contributions, base), model.log_odds(X, horizon),
                                   rtol=0, atol=1e-9)
        own = source[:, k] == k
        assert np.ptp(base[own]) < 1e-9  # one base value per head


def test_compiled_treeshap_equals_xgboost_pred_contribs_on_thousands_of_rows(fitted):
    import xgboost as xgb

    from models.treeshap import CompiledTrees
    examples, models = fitted
    booster = models["xgboost"].model.estimator.booster
    X = np.vstack([examples.X, examples.X[:500]]).astype(np.float64)
    X[len(examples.X):, ::3] = np.nan          # missing values take the default branch
    compiled = CompiledTrees(booster)
    reference = booster.predict(xgb.DMatrix(X.astype(np.float32)), pred_contribs=True)
    assert len(X) > 2000
    np.testing.assert_allclose(compiled.contributions(X), reference, rtol=0, atol=1e-6)
    margin = booster.inplace_predict(X.astype(np.float32), predict_type="margin")
    np.testing.assert_allclose(compiled.margin(X), margin, rtol=0, atol=2e-5)  # ours in float64, theirs float32
    np.testing.assert_allclose(compiled.contributions(X).sum(axis=1), compiled.margin(X), rtol=0, atol=1e-9)


def test_tree_explanations_equal_shap_treeexplainer(fitted):
    import shap
    examples, models = fitted
    model = models["xgboost"].model
    X = examples.X[:200]
    explainer = shap.TreeExplainer(model.estimator.booster)
    raw = explainer.shap_values(X.astype(np.float32))
    a, _ = model.calibration
    grouped = (a * raw) @ model._group_matrix
    np.testing.assert_allclose(model.head().explain(X)[0] @ model._group_matrix, grouped, atol=1e-5)


def test_calibrated_probabilities_are_honest_on_validation(fitted):
    examples, models = fitted
    for fit in models.values():
        for horizon in examples.horizons:
            observed = examples.y(horizon)[examples.rows("search", horizon)].mean()
            assert fit.oof_probability[horizon].mean() == pytest.approx(observed, abs=0.01)


def test_monotone_constraints_hold_more_ready_never_lowers_the_score(fitted, schema):
    from features.build import feature_spec
    from models.estimators import fit_trees, tree_params
    from models.scoring import Head, ScoringModel, TreeEstimator
    examples, models = fitted
    assert {t["monotone"] for t in models["xgboost"].search} == {True, False}  # both were tried
    spec = feature_spec(schema)
    booster, _ = fit_trees(examples.X, examples.y(12), tree_params(4, spec.monotone, 7, 2), 80)
    model = ScoringModel(schema.to_dict(), "xgboost", [Head(12, TreeEstimator(booster), (1.0, 0.0))], 12)
    levels = [i for i, name in enumerate(spec.names) if name.endswith("_level")]
    X = examples.X[:500].copy()
    before = model.probability(X)
    X[:, levels] = np.minimum(X[:, levels] + 1, 5)
    assert (model.probability(X) >= before - 1e-9).all()


def test_same_data_and_seed_give_a_bit_identical_booster(small_tables, schema, fitted):
    _, first = fitted
    _, second = fit_all(small_tables, schema, horizon=12, seed=7)
    for one, other in zip(first["xgboost"].model.heads, second["xgboost"].model.heads):
        assert one.estimator.booster.save_raw("ubj") == other.estimator.booster.save_raw("ubj")
