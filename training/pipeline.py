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

from bip.config import get_settings
from features.build import age_band, build_features, feature_spec, measurement_occasions
from features.labels import label_occasions
from features.schema import IndicatorSchema
from models.estimators import fit_logistic, fit_platt, fit_trees, tree_margin, tree_params
from models.scoring import Head, ScoringModel, TreeEstimator, cumulative_curve, sigmoid
from training.metrics import group_metrics, metric_set

GROUP_COLUMNS = ["jobcenter", "gender", "age_band", "origin"]


def fingerprint(tables: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(name.encode())
        digest.update(pd.util.hash_pandas_object(tables[name], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def person_fold(person_ids: pd.Series, folds: int | None = None) -> np.ndarray:
    """Stable fold per person (a hash of the id), so a person's rows always stay together."""
    folds = folds or get_settings().folds
    return np.array([int(hashlib.md5(p.encode()).hexdigest()[:8], 16) % folds for p in person_ids.astype(str)])


def fit_boosted(X, y, params, rounds, X_val=None, y_val=None):
    """fit_trees here, or on the Dask cluster at BIP_DASK_ADDRESS when it is set (xgboost.dask)."""
    address = get_settings().dask_address
    if address:
        from training.distributed import fit_trees_on_dask
        return fit_trees_on_dask(address, X, y, params, rounds, X_val, y_val)
    return fit_trees(X, y, params, rounds, X_val, y_val)


def label_column(horizon: int) -> str:
    return f"label_{horizon}m"


@dataclass
class Examples:
    """Every measurement occasion with at least one observed horizon, features built once, and a
    label per horizon: NaN where that horizon reaches past the register (censored), so each
    horizon trains and tests only on the occasions where it is observed."""

    frame: pd.DataFrame   # person_id, as_of, label_{h}m (NaN = censored), fold, is_test, group columns
    X: np.ndarray
    horizons: tuple[int, ...]
    test_from: pd.Timestamp

    @property
    def train(self) -> np.ndarray:
        return ~self.frame["is_test"].to_numpy()

    @property
    def test(self) -> np.ndarray:
        return self.frame["is_test"].to_numpy()

    def observed(self, horizon: int) -> np.ndarray:
        return self.frame[label_column(horizon)].notna().to_numpy()

    def y(self, horizon: int) -> np.ndarray:
        """Labels of every row (0 where censored: use with `observed` or `rows`)."""
        return self.frame[label_column(horizon)].fillna(0).to_numpy(int)

    def rows(self, part: str, horizon: int) -> np.ndarray:
        """The rows of `part` (train, test or search) where `horizon` is observed."""
        return getattr(self, part) & self.observed(horizon)

    @cached_property
    def search(self) -> np.ndarray:
        """Training rows used for cross-validation: all of them, or on a national-size cohort
        the rows of a random set of persons (at most search_max_examples rows), so the search
        and calibration stay minutes; the final heads are then fitted on every training row."""
        train, limit = self.train, get_settings().search_max_examples
        if train.sum() <= limit:
            return train
        persons = self.frame["person_id"].to_numpy()
        unique = np.unique(persons[train])
        chosen = np.random.default_rng(0).choice(unique, size=int(len(unique) * limit / train.sum()), replace=False)
        return train & np.isin(persons, chosen)


def build_examples(tables: dict[str, pd.DataFrame], schema: IndicatorSchema, horizons,
                   test_from: str | None = None) -> Examples:
    """One row per measurement occasion, labelled at each horizon where it is observed;
    out-of-time test split at `test_from` (default: the last 12 months of measurements)."""
    horizons = tuple(sorted({horizons} if isinstance(horizons, int) else set(horizons)))
    occasions = measurement_occasions(tables["measurements"])
    frame = occasions[["person_id", "as_of"]].copy()
    frame["as_of"] = frame["as_of"].astype("datetime64[s]")
    for horizon in horizons:
        labelled = label_occasions(occasions, tables["outcomes"], horizon)
        labelled = labelled.rename(columns={"label": label_column(horizon)})
        labelled[label_column(horizon)] = labelled[label_column(horizon)].astype("float64")
        frame = frame.merge(labelled, on=["person_id", "as_of"], how="left")
    # the shortest horizon is observed wherever any is; occasions with none are no examples
    frame = frame[frame[label_column(horizons[0])].notna()].reset_index(drop=True)
    if test_from is None:
        latest = occasions["as_of"].max()
        test_from = (latest - pd.DateOffset(months=12)).to_period("M").to_timestamp()
    test_from = pd.Timestamp(test_from)
    features = build_features(frame[["person_id", "as_of"]], tables["persons"], tables["measurements"],
                              tables.get("activities", pd.DataFrame(columns=["person_id", "kind", "start", "end"])),
                              schema)
    frame["fold"] = person_fold(frame["person_id"])
    frame["is_test"] = frame["as_of"] >= test_from
    persons = tables["persons"].drop_duplicates("person_id").set_index("person_id")
    for column in ("jobcenter", "gender", "origin"):
        frame[column] = frame["person_id"].map(persons[column])
    frame["age_band"] = age_band(features["person__age"])
    return Examples(frame, features.to_numpy(dtype=np.float64), horizons, test_from)


@dataclass
class FittedModel:
    kind: str
    model: ScoringModel
    # out-of-fold calibrated curve probability per horizon, on that horizon's search rows
    oof_probability: dict[int, np.ndarray]
    params: dict = field(default_factory=dict)
    search: list = field(default_factory=list)


def _cross_fit_trees(ex: Examples, horizon: int, depth: int, monotone: bool, seed: int, spec, progress=None):
    """Out-of-fold margins on the horizon's search rows, best round counts and the fold boosters
    (cut at their best round). `progress(fraction)` before every fold."""
    settings = get_settings()
    rows = ex.rows("search", horizon)
    X, y, folds = ex.X[rows], ex.y(horizon)[rows], ex.frame["fold"].to_numpy()[rows]
    params = tree_params(depth, spec.monotone if monotone else None, seed, threads=2)
    margin, rounds, boosters = np.zeros(len(y)), [], []
    for k in range(settings.folds):
        if progress:
            progress(k / settings.folds)
        fit, held = folds != k, folds == k
        booster, best = fit_boosted(X[fit], y[fit], params, settings.max_rounds, X[held], y[held])
        margin[held] = tree_margin(booster, X[held], best)
        rounds.append(best)
        boosters.append(booster[:best])
    return margin, rounds, boosters


def _assemble(kind: str, ex: Examples, schema: IndicatorSchema, default_horizon: int,
              parts: dict[int, tuple]) -> tuple[ScoringModel, dict[int, np.ndarray], dict]:
    """Platt-calibrate each horizon's out-of-fold margins, build the heads and the model, and
    return the out-of-fold curve probabilities (the same cumulative maximum as the model)."""
    heads, raw, platt = [], np.full((len(ex.frame), len(ex.horizons)), np.nan), {}
    for k, horizon in enumerate(ex.horizons):
        estimator, folds, oof_margin = parts[horizon]
        rows = ex.rows("search", horizon)
        a, b = fit_platt(oof_margin, ex.y(horizon)[rows])
        heads.append(Head(horizon, estimator, (a, b), folds))
        raw[rows, k] = a * oof_margin + b
        platt[f"platt_a_{horizon}m"], platt[f"platt_b_{horizon}m"] = a, b
    oof = {}
    for k, horizon in enumerate(ex.horizons):
        # a row observed at this horizon is observed at every shorter one: all its values exist
        rows = ex.rows("search", horizon)
        oof[horizon] = sigmoid(cumulative_curve(raw[rows, :k + 1])[0][:, k])
    model = ScoringModel(schema.to_dict(), kind, heads, default_horizon)
    return model, oof, platt


def fit_xgboost(ex: Examples, schema: IndicatorSchema, default_horizon: int, seed: int,
                progress=None) -> FittedModel:
    """Boosted heads: the (depth, monotone) search runs at the default horizon; every other
    horizon reuses the chosen shape with its own early-stopped round count and calibration.
    `progress(fraction, message)` per cross-validation fold."""
    settings = get_settings()
    spec = feature_spec(schema)
    y = ex.y(default_horizon)[ex.rows("search", default_horizon)]
    # the cross-validations to run: one per search candidate, one per other horizon
    steps = len(settings.search_grid) + len(ex.horizons) - 1

    def step(done: int, message: str):
        return (lambda f: progress((done + f) / steps, message)) if progress else None
    trials = []
    for i, (depth, monotone) in enumerate(settings.search_grid):
        margin, rounds, boosters = _cross_fit_trees(
            ex, default_horizon, depth, monotone, seed, spec,
            step(i, f"xgboost search {i + 1}/{len(settings.search_grid)}: depth {depth}, "
                    f"{'monotone' if monotone else 'unconstrained'}, {default_horizon} months"))
        loss = metric_set(y, sigmoid(margin))["log_loss"]
        trials.append({"depth": depth, "monotone": monotone, "cv_log_loss": loss,
                       "rounds": int(np.mean(rounds)), "margin": margin, "boosters": boosters})
    best = min(t["cv_log_loss"] for t in trials)
    chosen = next(t for t in trials if t["cv_log_loss"] <= best * (1 + settings.within_noise))
    params = tree_params(chosen["depth"], spec.monotone if chosen["monotone"] else None, seed, threads=2)
    parts, rounds = {}, {}
    done = len(settings.search_grid)
    for horizon in ex.horizons:
        if horizon == default_horizon:
            margin, count, boosters = chosen["margin"], chosen["rounds"], chosen["boosters"]
        else:
            margin, counts, boosters = _cross_fit_trees(ex, horizon, chosen["depth"], chosen["monotone"], seed, spec,
                                                        step(done, f"xgboost head: {horizon} months"))
            done += 1
            count = int(np.mean(counts))
        train = ex.rows("train", horizon)
        booster, _ = fit_boosted(ex.X[train], ex.y(horizon)[train], params, count)
        parts[horizon] = (TreeEstimator(booster), [TreeEstimator(f) for f in boosters], margin)
        rounds[f"rounds_{horizon}m"] = count
    model, oof, platt = _assemble("xgboost", ex, schema, default_horizon, parts)
    return FittedModel("xgboost", model, oof,
                       params={"max_depth": chosen["depth"], "monotone": chosen["monotone"], **rounds,
                               "learning_rate": params["learning_rate"], **platt},
                       search=[{k: v for k, v in t.items() if k not in ("margin", "boosters")} for t in trials])


def fit_logistic_model(ex: Examples, schema: IndicatorSchema, default_horizon: int, progress=None) -> FittedModel:
    folds_count = get_settings().folds
    parts = {}
    for i, horizon in enumerate(ex.horizons):
        if progress:
            progress(i / len(ex.horizons), f"logistic head: {horizon} months")
        rows = ex.rows("search", horizon)
        X, y, folds = ex.X[rows], ex.y(horizon)[rows], ex.frame["fold"].to_numpy()[rows]
        margin, fold_models = np.zeros(len(y)), []
        for k in range(folds_count):
            fold_models.append(fit_logistic(X[folds != k], y[folds != k]))
            margin[folds == k] = fold_models[-1].margin(X[folds == k])
        train = ex.rows("train", horizon)
        parts[horizon] = (fit_logistic(ex.X[train], ex.y(horizon)[train]), fold_models, margin)
    model, oof, platt = _assemble("logistic", ex, schema, default_horizon, parts)
    return FittedModel("logistic", model, oof, params={"C": 0.5, **platt})


def attach_truth(ex: Examples, truth_path: Path) -> dict[int, np.ndarray] | None:
    """The oracle's probability per horizon for each example, when the simulator's truth is present."""
    if not truth_path.exists():
        return None
    truth = pd.read_parquet(truth_path)
    columns = [f"p_{h}m" for h in ex.horizons if f"p_{h}m" in truth]
    if not columns:
        return None
    truth["as_of"] = truth["as_of"].astype("datetime64[s]")
    merged = ex.frame[["person_id", "as_of"]].merge(truth[["person_id", "as_of", *columns]],
                                                    on=["person_id", "as_of"], how="left")
    return {h: merged[f"p_{h}m"].to_numpy() for h in ex.horizons if f"p_{h}m" in merged}


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


def evaluate(fitted: FittedModel, ex: Examples, oracle: dict[int, np.ndarray] | None) -> dict:
    """Metrics per horizon on validation (out-of-fold) and out-of-time test, overall and by group,
    with the oracle's beside them; the default horizon's also at the top level. `curve` says how
    often a shorter head binds (held) and how many test occasions have a decreasing curve (0 by
    construction)."""
    model = fitted.model
    result = {"horizons": {}}
    curve = model.curve_log_odds(ex.X[ex.test])
    source = cumulative_curve(model.raw_log_odds(ex.X[ex.test]))[1]
    result["curve"] = {"decreasing_occasions": int((np.diff(curve, axis=1) < 0).any(axis=1).sum()),
                       **{f"held_share_{h}m": float((source[:, k] != k).mean()) for k, h in enumerate(ex.horizons)}}
    for horizon in ex.horizons:
        test, search = ex.rows("test", horizon), ex.rows("search", horizon)
        y = ex.y(horizon)
        probability = model.probability(ex.X[test], horizon)
        part = {"validation": metric_set(y[search], fitted.oof_probability[horizon]),
                "test": metric_set(y[test], probability)}
        frame = ex.frame[test].assign(label=y[test], probability=probability)
        part["test_groups"] = group_metrics(frame, GROUP_COLUMNS)
        truth = None if oracle is None else oracle.get(horizon)
        if truth is not None and not np.isnan(truth[test | search]).any():
            part["oracle_validation"] = metric_set(y[search], truth[search])
            part["oracle_test"] = metric_set(y[test], truth[test])
            part["oracle_test_groups"] = group_metrics(frame.assign(probability=truth[test]), GROUP_COLUMNS)
        result["horizons"][horizon] = part
    result.update(result["horizons"][model.horizon_months])
    test = ex.rows("test", model.horizon_months)
    contributions, _ = model.explain(ex.X[test])
    result["mean_abs_contribution"] = dict(zip(model.groups, np.abs(contributions).mean(axis=0).tolist()))
    result["cost"] = explanation_cost_ms(model, ex.X[test])
    return result


def fit_all(tables: dict[str, pd.DataFrame], schema: IndicatorSchema, horizon: int | None = None, seed: int = 7,
            test_from: str | None = None, horizons=None, progress=None) -> tuple[Examples, dict[str, FittedModel]]:
    """Both model kinds on the same examples. `horizon` is the default horizon (the score's
    `probability`), `horizons` the curve (default: the settings'); the default joins the curve.
    `progress(fraction, message)` as the work advances."""
    settings = get_settings()
    horizon = horizon or settings.horizon_months
    horizons = tuple(sorted(set(horizons or settings.horizons) | {horizon}))
    progress = progress or (lambda fraction, message: None)
    progress(0.0, "labels and features")
    ex = build_examples(tables, schema, horizons, test_from)
    for h in horizons:
        if ex.rows("test", h).sum() == 0 or ex.rows("train", h).sum() == 0:
            raise ValueError(f"the split at {ex.test_from.date()} leaves no training or no test occasions "
                             f"with an observed {h}-month horizon")
    # shares of the time on the default cohort: features 5%, boosting 88%, logistic 7%
    xgboost = fit_xgboost(ex, schema, horizon, seed, lambda f, message: progress(0.05 + 0.88 * f, message))
    logistic = fit_logistic_model(ex, schema, horizon, lambda f, message: progress(0.93 + 0.07 * f, message))
    return ex, {"xgboost": xgboost, "logistic": logistic}
