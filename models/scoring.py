"""The scoring model: schema + feature builder + one head per horizon + explainer, as one unit.

A head is one horizon's estimator with its Platt calibration: log-odds = a * margin + b. Platt is
affine on the margin, so every exact SHAP value scales by the same factor `a` and the base value
becomes a * base + b: base_value + sum(contributions) equals the head's log-odds exactly (isotonic
calibration would break that).

The readiness curve (probabilities within 3, 6, 12, 24 months) is made non-decreasing by
construction with a cumulative maximum over the heads' calibrated log-odds, shortest horizon first:
curve_k = max(head_1, ..., head_k). The curve at horizon k is therefore always exactly one head's
log-odds (its own, or a shorter horizon's where that one is higher), and its explanation is that
head's exact TreeSHAP values: base + contributions == the curve's log-odds at every horizon, to
float64 rounding. A smooth combination (a softplus of increments, a product of hazards) would
guarantee monotonicity too, but no additive exact explanation of its log-odds exists. Where a
shorter head binds, the reported horizon inherits that head's explanation (and base value); the
training run logs how often that happens ("held" share per horizon).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.build import FeatureSpec, build_features, feature_spec
from features.schema import IndicatorSchema, schema_from_dict


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def sigmoid_scalar(x: float) -> float:
    """sigmoid of one number, the same bits as sigmoid() of a single value (numpy's one-element
    path calls the C library's exp, as math.exp does; its vector path may use another exp) at a
    tenth of the cost."""
    try:
        return 1.0 / (1.0 + math.exp(-x))
    except OverflowError:  # x below about -709: numpy gives exp = inf, so 0.0
        return 0.0


@dataclass
class LinearEstimator:
    """A logistic regression on imputed, standardised features: margin = w . z + c."""

    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def _standardised(self, X: np.ndarray) -> np.ndarray:
        X = np.where(np.isnan(X), self.fill, X)
        return (X - self.mean) / self.scale

    def margin(self, X: np.ndarray) -> np.ndarray:
        return self._standardised(X) @ self.coef + self.intercept

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact additive parts (n, F+1): w_j * z_j and the intercept last (z is 0 at the mean)."""
        parts = self._standardised(X) * self.coef
        return np.hstack([parts, np.full((len(X), 1), self.intercept)])


@dataclass
class TreeEstimator:
    """An XGBoost booster, scored and explained through its compiled arrays (models/treeshap.py):
    no DMatrix, no threads, margins and exact SHAP values in float64."""

    booster: object

    def __post_init__(self):
        self.booster.set_param({"nthread": 1})
        self._compiled = None
        self._compiling = threading.Lock()

    def __getstate__(self):
        return {"booster": self.booster}

    def __setstate__(self, state):
        self.booster = state["booster"]
        self.__post_init__()

    @property
    def compiled(self):
        if self._compiled is None:  # built once per process, when first needed
            with self._compiling:
                if self._compiled is None:
                    self._compile()
        return self._compiled

    def _compile(self) -> None:
        """Compile the booster, then keep an unused copy of it and free the one compiled from on
        this thread. XGBoost keeps the answer buffers of its C API calls (here the JSON dump and a
        probe prediction) per thread and booster, and releases a thread's buffers only when the
        booster is freed on that thread (dmlc/xgboost#2109). The service compiles a reloaded model
        on one thread-pool thread and drops it on another at a later reload, which left about
        2.5 MB behind per reload and worker; a copy nothing has called holds no such buffers."""
        from models.treeshap import CompiledTrees
        used = self.booster
        self._compiled = CompiledTrees(used)
        self.booster = used.copy()
        self.booster.set_param({"nthread": 1})
        del used  # the last reference: XGBoost frees this thread's buffers with it

    def margin(self, X: np.ndarray) -> np.ndarray:
        return self.compiled.margin(X)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return self.compiled.contributions(X)


@dataclass
class Head:
    """One horizon: estimator, Platt calibration (log-odds = a * margin + b) and the
    cross-validation estimators (each fit on 4/5 of the persons), whose spread gives the interval."""

    horizon_months: int
    estimator: object
    calibration: tuple[float, float]
    fold_estimators: list = field(default_factory=list)

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return a * self.estimator.margin(X) + b

    def fold_log_odds(self, X: np.ndarray) -> np.ndarray:
        """(folds, n) calibrated log-odds of the cross-validation estimators."""
        a, b = self.calibration
        return np.stack([a * e.margin(X) + b for e in self.fold_estimators]) if self.fold_estimators \
            else np.empty((0, len(X)))

    def explain(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature contributions (n, F) and base values (n,) in calibrated log-odds."""
        a, b = self.calibration
        parts = self.estimator.contributions(np.asarray(X, dtype=np.float64)).astype(np.float64)
        return a * parts[:, :-1], a * parts[:, -1] + b


def cumulative_curve(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(curve, source) from heads' log-odds `raw` (n, H), shortest horizon first.

    curve[:, k] = max(raw[:, :k+1]) (non-decreasing in k); source[:, k] is the head whose value it
    is, the own head on ties, so its explanation is the curve's explanation."""
    curve = np.maximum.accumulate(raw, axis=1)
    # the last head at or before k whose own value is the curve's (head 0 at k = 0, whatever it is)
    own = np.where(raw >= curve, np.arange(raw.shape[1]), 0)
    return curve, np.maximum.accumulate(own, axis=1)


class _Forests:
    """A tree model's boosters as two compiled forests (heads; cross-validation models, head by
    head) and the Platt calibration of each column: log-odds = margins * a + b."""

    def __init__(self, heads: list[Head]):
        from models.treeshap import CompiledForest
        self.heads = CompiledForest([h.estimator.compiled for h in heads])
        self.head_a = np.array([h.calibration[0] for h in heads], dtype=np.float64)
        self.head_b = np.array([h.calibration[1] for h in heads], dtype=np.float64)
        counts = {len(h.fold_estimators) for h in heads}
        # the joined fold forest serves models whose heads have equally many folds (all trained ones)
        self.folds_per_head = counts.pop() if len(counts) == 1 else None
        if self.folds_per_head:
            self.folds = CompiledForest([e.compiled for h in heads for e in h.fold_estimators])
            self.fold_a = np.array([h.calibration[0] for h in heads for _ in h.fold_estimators], dtype=np.float64)
            self.fold_b = np.array([h.calibration[1] for h in heads for _ in h.fold_estimators], dtype=np.float64)


@dataclass
class ScoringModel:
    schema_dict: dict
    kind: str                        # "xgboost" | "logistic"
    heads: list                      # one Head per horizon, shortest first
    horizon_months: int              # the default horizon: `probability` and the explanation
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.heads = sorted(self.heads, key=lambda h: h.horizon_months)
        if self.horizon_months not in self.horizons:
            raise ValueError(f"default horizon {self.horizon_months} is not one of the heads' {self.horizons}")
        self._schema = schema_from_dict(self.schema_dict)
        self._spec = feature_spec(self._schema)
        groups = self._spec.group_names
        index = {g: i for i, g in enumerate(groups)}
        self._group_matrix = np.zeros((len(self._spec.names), len(groups)))
        for f, g in enumerate(self._spec.groups):
            self._group_matrix[f, index[g]] = 1.0

    def __getstate__(self):
        state = self.__dict__.copy()
        for transient in ("_schema", "_spec", "_group_matrix", "_citizen_features", "_forests"):
            state.pop(transient, None)
        return state

    def __setstate__(self, state):
        if "heads" not in state:  # a model saved before the curve: one head
            state["heads"] = [Head(state["horizon_months"], state.pop("estimator"), state.pop("calibration"),
                                   state.pop("fold_estimators", []))]
        self.__dict__.update(state)
        self.__post_init__()

    @property
    def schema(self) -> IndicatorSchema:
        return self._schema

    @property
    def spec(self) -> FeatureSpec:
        return self._spec

    @property
    def groups(self) -> list[str]:
        return self._spec.group_names

    @property
    def horizons(self) -> list[int]:
        return [h.horizon_months for h in self.heads]

    def head(self, horizon: int | None = None) -> Head:
        """The head of `horizon` (default: the model's default horizon)."""
        horizon = self.horizon_months if horizon is None else horizon
        for h in self.heads:
            if h.horizon_months == horizon:
                return h
        raise ValueError(f"horizon {horizon}: allowed {self.horizons}")

    # the default horizon's parts, for callers that know one horizon
    @property
    def estimator(self):
        return self.head().estimator

    @property
    def calibration(self) -> tuple[float, float]:
        return self.head().calibration

    @property
    def fold_estimators(self) -> list:
        return self.head().fold_estimators

    def _column(self, horizon: int | None) -> int:
        return self.horizons.index(self.head(horizon).horizon_months)

    # ---- scores ----------------------------------------------------------------------------
    def _margin_forests(self) -> _Forests | None:
        """For tree models: every head's booster, and every cross-validation booster, joined into
        two compiled forests with their calibrations as vectors (_Forests), so a request walks
        them in two calls instead of one per booster, with the same log-odds bit for bit. Built on
        first use and kept on this object (transient: not pickled), so they go with the model.
        None for linear models."""
        forests = self.__dict__.get("_forests")
        if forests is None:
            estimators = [h.estimator for h in self.heads] + [e for h in self.heads for e in h.fold_estimators]
            forests = _Forests(self.heads) if all(isinstance(e, TreeEstimator) for e in estimators) else False
            self._forests = forests
        return forests or None

    def raw_log_odds(self, X: np.ndarray) -> np.ndarray:
        """(n, H) each head's own calibrated log-odds, before the cumulative maximum."""
        forests = self._margin_forests()
        if forests is None:
            return np.stack([h.log_odds(X) for h in self.heads], axis=1)
        return forests.heads.margins(X) * forests.head_a + forests.head_b

    def _fold_curves(self, X: np.ndarray) -> np.ndarray | None:
        """(count, n, H): each cross-validation round's curve (its heads' log-odds combined with
        the cumulative maximum), count = the fewest folds of any head; None with fewer than 2."""
        forests = self._margin_forests()
        count = min(len(h.fold_estimators) for h in self.heads)
        if count < 2:
            return None
        if forests is not None and forests.folds_per_head == count:
            n, H = len(X), len(self.heads)
            logits = forests.folds.margins(X) * forests.fold_a + forests.fold_b    # (n, H * count), head-major
            rounds = logits.reshape(n, H, count).transpose(2, 0, 1)                # (count, n, H)
            # C order, as np.stack gave before: the std below then sums in the same order
            return np.ascontiguousarray(np.maximum.accumulate(rounds, axis=2))
        folds = [h.fold_log_odds(X) for h in self.heads]
        return np.stack([np.maximum.accumulate(np.stack([f[k] for f in folds], axis=1), axis=1)
                         for k in range(count)])

    def curve_log_odds(self, X: np.ndarray) -> np.ndarray:
        """(n, H) log-odds of the readiness curve, non-decreasing along the horizons."""
        return cumulative_curve(self.raw_log_odds(X))[0]

    def log_odds(self, X: np.ndarray, horizon: int | None = None) -> np.ndarray:
        if len(self.heads) == 1:
            return self.heads[0].log_odds(X)
        return self.curve_log_odds(X)[:, self._column(horizon)]

    def probability(self, X: np.ndarray, horizon: int | None = None) -> np.ndarray:
        return sigmoid(self.log_odds(X, horizon))

    def curve_interval(self, X: np.ndarray, curve: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """95% model-uncertainty interval (n, H) per horizon: the curve's log-odds +- 1.96 x the
        standard deviation of the cross-validation models' curves (each fold's heads combined
        with the same cumulative maximum). It reflects how much the score depends on which
        persons the model was trained on, not the chance of the outcome."""
        curve = self.curve_log_odds(X) if curve is None else curve
        fold_curves = self._fold_curves(X)
        if fold_curves is None:
            return sigmoid(curve), sigmoid(curve)
        spread = 1.96 * fold_curves.std(axis=0, ddof=1)
        return sigmoid(curve - spread), sigmoid(curve + spread)

    def interval(self, X: np.ndarray, log_odds: np.ndarray | None = None,
                 horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The interval at one horizon (default: the default horizon), centred on `log_odds`."""
        k = self._column(horizon)
        curve = self.curve_log_odds(X)
        if log_odds is not None:
            curve[:, k] = log_odds
        low, high = self.curve_interval(X, curve)
        return low[:, k], high[:, k]

    def explain(self, X: np.ndarray, horizon: int | None = None,
                raw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-group contributions (n, G) and base values (n,) in calibrated log-odds at one horizon.

        base + contributions.sum(1) (`explained_log_odds`) equals log_odds(X, horizon) to float64
        rounding: each row is explained by the head whose log-odds the curve takes there.
        `raw`: raw_log_odds(X) when the caller has it already."""
        X = np.asarray(X, dtype=np.float64)
        k = self._column(horizon)
        parts, base = self.heads[k].explain(X)
        if len(self.heads) > 1:
            source = cumulative_curve(self.raw_log_odds(X) if raw is None else raw)[1][:, k]
            for j in sorted(set(source[source != k].tolist())):
                rows = source == j
                parts[rows], base[rows] = self.heads[j].explain(X[rows])
        return parts @ self._group_matrix, base

    @staticmethod
    def explained_log_odds(contributions: np.ndarray, base: np.ndarray) -> np.ndarray:
        return base + contributions.sum(axis=1)

    # ---- tables -> features -> scores ---------------------------------------------------------
    def features(self, requests: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        return build_features(requests, tables["persons"], tables["measurements"],
                              tables.get("activities", _no_activities()), self._schema)

    def score_frame(self, requests: pd.DataFrame, tables: dict[str, pd.DataFrame],
                    explain: bool = False) -> pd.DataFrame:
        """person_id, as_of, probability (default horizon), probability_{h}m for every horizon,
        interval_low and interval_high (default horizon), and with `explain` the base value and
        the contributions per group at the default horizon."""
        X = self.features(requests, tables).to_numpy()
        out = requests[["person_id", "as_of"]].reset_index(drop=True).copy()
        curve = self.curve_log_odds(X)
        k = self._column(None)
        out["probability"] = sigmoid(curve[:, k])
        if explain:
            contributions, base = self.explain(X)
            # with an explanation, report the probability that the explanation adds up to (the
            # same to float64 rounding; the curve columns stay exactly non-decreasing)
            out["probability"] = sigmoid(self.explained_log_odds(contributions, base))
        for j, horizon in enumerate(self.horizons):
            out[f"probability_{horizon}m"] = sigmoid(curve[:, j])
        low, high = self.curve_interval(X, curve)
        out["interval_low"], out["interval_high"] = low[:, k], high[:, k]
        if explain:
            out["base_value"] = base
            for g, group in enumerate(self.groups):
                out[f"contribution__{group}"] = contributions[:, g]
        return out


def _no_activities() -> pd.DataFrame:
    return pd.DataFrame({"person_id": pd.Series(dtype="string"), "kind": pd.Series(dtype="string"),
                         "start": pd.Series(dtype="datetime64[s]"), "end": pd.Series(dtype="datetime64[s]")})
