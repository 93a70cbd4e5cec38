"""The training pipeline: load, label, split by person and time, fit, calibrate, evaluate.

Stages are plain functions that the CLI and the tests both call; MLflow logging lives in
training/tracking.py so that fitting can be tested without a store.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import age_band, build_features, feature_spec, measurement_occasions
from features.labels import label_occasions
from features.schema import IndicatorSchema
from models.estimators import fit_logistic, fit_platt, fit_trees, tree_margin, tree_params
from models.scoring import ScoringModel, TreeEstimator, sigmoid
from training.metrics import group_metrics, metric_set

FOLDS = 5
GROUP_COLUMNS = ["jobcenter", "gender", "age_band", "origin"]
# The small search: tree depth and monotone constraints on indicator levels. Ties go to the
# smaller, constrained model (cheaper explanations, never "more ready, lower score").
SEARCH = [(3, True), (5, True), (3, False), (5, False)]
WITHIN_NOISE = 0.003  # relative log-loss difference treated as a tie
MAX_ROUNDS = 1500
SEARCH_MAX_EXAMPLES = 150_000


def fingerprint(tables: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(name.encode())
        digest.update(pd.util.hash_pandas_object(tables[name], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def person_fold(person_ids: pd.Series, folds: int = FOLDS) -> np.ndarray:
    """Stable fold per person (a hash of the id), so a person's rows always stay together."""
    return np.array([int(hashlib.md5(p.encode()).hexdigest()[:8], 16) % folds for p in person_ids.astype(str)])


@dataclass
class Examples:
    frame: pd.DataFrame   # person_id, as_of, label, fold, is_test, group columns
    X: np.ndarray
    y: np.ndarray
    test_from: pd.Timestamp

    @property
    def train(self) -> np.ndarray:
        return ~self.frame["is_test"].to_numpy()

    @property
    def test(self) -> np.ndarray:
        return self.frame["is_test"].to_numpy()

    @cached_property
    def search(self) -> np.ndarray:
        """Training rows used for cross-validation: all of them, or on a national-size cohort
        the rows of a random set of persons (at most SEARCH_MAX_EXAMPLES rows), so the search
        and calibration stay minutes; the final model is then fitted on every training row."""
        train = self.train
        if train.sum() <= SEARCH_MAX_EXAMPLES:
            return train
        persons = self.frame["person_id"].to_numpy()
        unique = np.unique(persons[train])
        share = SEARCH_MAX_EXAMPLES / train.sum()
        chosen = np.random.default_rng(0).choice(unique, size=int(len(unique) * share), replace=False)
        return train & np.isin(persons, chosen)


def build_examples(tables: dict[str, pd.DataFrame], schema: IndicatorSchema, horizon: int,
                   test_from: str | None = None) -> Examples:
    """One example per measurement occasion whose horizon is observed; out-of-time test split."""
    occasions = measurement_occasions(tables["measurements"])
    labelled = label_occasions(occasions, tables["outcomes"], horizon)
    if test_from is None:
        latest = occasions["as_of"].max()
        test_from = (latest - pd.DateOffset(months=12)).to_period("M").to_timestamp()
    test_from = pd.Timestamp(test_from)
    features = build_features(labelled, tables["persons"], tables["measurements"],
                              tables.get("activities", pd.DataFrame(columns=["person_id", "kind", "start", "end"])),
                              schema)
    frame = labelled.copy()
    frame["fold"] = person_fold(frame["person_id"])
    frame["is_test"] = frame["as_of"] >= test_from
    persons = tables["persons"].drop_duplicates("person_id").set_index("person_id")
    frame["jobcenter"] = frame["person_id"].map(persons["jobcenter"])
    frame["gender"] = frame["person_id"].map(persons["gender"])
    frame["origin"] = frame["person_id"].map(persons["origin"])
    frame["age_band"] = age_band(features["person__age"])
    return Examples(frame, features.to_numpy(dtype=np.float64), frame["label"].to_numpy(int), test_from)


@dataclass
class FittedModel:
    kind: str
    model: ScoringModel
    oof_probability: np.ndarray          # out-of-fold, calibrated, on the search rows (Examples.search)
    params: dict = field(default_factory=dict)
    search: list = field(default_factory=list)


def _cross_fit_trees(ex: Examples, depth: int, monotone: bool, seed: int, spec):
    """Out-of-fold margins, best round counts and the fold boosters (cut at their best round)."""
    rows = ex.search
    X, y, folds = ex.X[rows], ex.y[rows], ex.frame["fold"].to_numpy()[rows]
    params = tree_params(depth, spec.monotone if monotone else None, seed, threads=2)
    margin, rounds, boosters = np.zeros(len(y)), [], []
    for k in range(FOLDS):
        fit, held = folds != k, folds == k
        booster, best = fit_trees(X[fit], y[fit], params, MAX_ROUNDS, X[held], y[held])
        margin[held] = tree_margin(booster, X[held], best)
        rounds.append(best)
        boosters.append(booster[:best])
    return margin, rounds, boosters


def fit_xgboost(ex: Examples, schema: IndicatorSchema, horizon: int, seed: int) -> FittedModel:
    spec = feature_spec(schema)
    y = ex.y[ex.search]
    trials = []
    for depth, monotone in SEARCH:
        margin, rounds, boosters = _cross_fit_trees(ex, depth, monotone, seed, spec)
        loss = metric_set(y, sigmoid(margin))["log_loss"]
        trials.append({"depth": depth, "monotone": monotone, "cv_log_loss": loss,
                       "rounds": int(np.mean(rounds)), "margin": margin, "boosters": boosters})
    best = min(t["cv_log_loss"] for t in trials)
    chosen = next(t for t in trials if t["cv_log_loss"] <= best * (1 + WITHIN_NOISE))
    a, b = fit_platt(chosen["margin"], y)
    params = tree_params(chosen["depth"], spec.monotone if chosen["monotone"] else None, seed, threads=2)
    booster, _ = fit_trees(ex.X[ex.train], ex.y[ex.train], params, chosen["rounds"])
    model = ScoringModel(schema.to_dict(), "xgboost", TreeEstimator(booster), (a, b), horizon,
                         fold_estimators=[TreeEstimator(f) for f in chosen["boosters"]])
    return FittedModel("xgboost", model, sigmoid(a * chosen["margin"] + b),
                       params={"max_depth": chosen["depth"], "monotone": chosen["monotone"],
                               "rounds": chosen["rounds"], "learning_rate": params["learning_rate"],
                               "platt_a": a, "platt_b": b},
                       search=[{k: v for k, v in t.items() if k not in ("margin", "boosters")} for t in trials])


def fit_logistic_model(ex: Examples, schema: IndicatorSchema, horizon: int) -> FittedModel:
    rows = ex.search
    X, y, folds = ex.X[rows], ex.y[rows], ex.frame["fold"].to_numpy()[rows]
    margin, fold_models = np.zeros(len(y)), []
    for k in range(FOLDS):
        fold_models.append(fit_logistic(X[folds != k], y[folds != k]))
        margin[folds == k] = fold_models[-1].margin(X[folds == k])
    a, b = fit_platt(margin, y)
    model = ScoringModel(schema.to_dict(), "logistic", fit_logistic(ex.X[ex.train], ex.y[ex.train]), (a, b), horizon,
                         fold_estimators=fold_models)
    return FittedModel("logistic", model, sigmoid(a * margin + b), params={"C": 0.5, "platt_a": a, "platt_b": b})


def attach_truth(ex: Examples, truth_path: Path, horizon: int) -> np.ndarray | None:
    """The oracle's probability for each example, when the simulator's truth is present."""
    if not truth_path.exists():
        return None
    truth = pd.read_parquet(truth_path)
    column = f"p_{horizon}m"
    if column not in truth:
        return None
    truth["as_of"] = truth["as_of"].astype("datetime64[s]")
    merged = ex.frame[["person_id", "as_of"]].merge(truth[["person_id", "as_of", column]],
                                                    on=["person_id", "as_of"], how="left")
    return merged[column].to_numpy()


def explanation_cost_ms(model: ScoringModel, X: np.ndarray, rows: int = 300) -> dict[str, float]:
    """Milliseconds to explain one row (one call per row, median) and per row in a batch."""
    sample = X[:rows]
    single = []
    for i in range(min(rows, len(sample))):
        start = time.perf_counter()
        model.explain(sample[i:i + 1])
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    model.explain(sample)
    batch = (time.perf_counter() - start) / max(len(sample), 1)
    return {"explain_ms_per_row_single": 1e3 * float(np.median(single)), "explain_ms_per_row_batch": 1e3 * batch}


def evaluate(fitted: FittedModel, ex: Examples, oracle: np.ndarray | None) -> dict:
    """Metrics on validation (out-of-fold) and out-of-time test, overall and by group,
    with the oracle's beside them."""
    test_probability = fitted.model.probability(ex.X[ex.test])
    result = {"validation": metric_set(ex.y[ex.search], fitted.oof_probability),
              "test": metric_set(ex.y[ex.test], test_probability)}
    test_frame = ex.frame[ex.test].assign(probability=test_probability)
    result["test_groups"] = group_metrics(test_frame, GROUP_COLUMNS)
    if oracle is not None and not np.isnan(oracle).any():
        result["oracle_validation"] = metric_set(ex.y[ex.search], oracle[ex.search])
        result["oracle_test"] = metric_set(ex.y[ex.test], oracle[ex.test])
        result["oracle_test_groups"] = group_metrics(test_frame.assign(probability=oracle[ex.test]), GROUP_COLUMNS)
    contributions, _ = fitted.model.explain(ex.X[ex.test])
    result["mean_abs_contribution"] = dict(zip(fitted.model.groups, np.abs(contributions).mean(axis=0).tolist()))
    result["cost"] = explanation_cost_ms(fitted.model, ex.X[ex.test])
    return result


def fit_all(tables: dict[str, pd.DataFrame], schema: IndicatorSchema, horizon: int, seed: int,
            test_from: str | None = None) -> tuple[Examples, dict[str, FittedModel]]:
    ex = build_examples(tables, schema, horizon, test_from)
    if ex.test.sum() == 0 or ex.train.sum() == 0:
        raise ValueError(f"the split at {ex.test_from.date()} leaves no training or no test occasions")
    return ex, {"xgboost": fit_xgboost(ex, schema, horizon, seed), "logistic": fit_logistic_model(ex, schema, horizon)}
