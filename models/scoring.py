"""The scoring model: schema + feature builder + estimator + calibration + explainer, as one unit.

Calibration is Platt scaling on the estimator's margin: calibrated log-odds = a * margin + b.
Because it is affine on the margin, every exact SHAP value scales by the same factor `a` and the
base value becomes a * base + b, so base_value + sum(contributions) equals the calibrated
log-odds exactly (isotonic calibration would break that).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.build import FeatureSpec, build_features, feature_spec
from features.schema import IndicatorSchema, schema_from_dict


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


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

    def __getstate__(self):
        return {"booster": self.booster}

    def __setstate__(self, state):
        self.booster = state["booster"]
        self.__post_init__()

    @property
    def compiled(self):
        if self._compiled is None:  # built once per process, when first needed
            from models.treeshap import CompiledTrees
            self._compiled = CompiledTrees(self.booster)
        return self._compiled

    def margin(self, X: np.ndarray) -> np.ndarray:
        return self.compiled.margin(X)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return self.compiled.contributions(X)


@dataclass
class ScoringModel:
    schema_dict: dict
    kind: str                        # "xgboost" | "logistic"
    estimator: object
    calibration: tuple[float, float]  # (a, b): log-odds = a * margin + b
    horizon_months: int
    metadata: dict = field(default_factory=dict)
    # the cross-validation models (each fit on 4/5 of the persons): their spread is the
    # model-uncertainty interval reported with a score
    fold_estimators: list = field(default_factory=list)

    def __post_init__(self):
        self._schema = schema_from_dict(self.schema_dict)
        self._spec = feature_spec(self._schema)
        groups = self._spec.group_names
        index = {g: i for i, g in enumerate(groups)}
        self._group_matrix = np.zeros((len(self._spec.names), len(groups)))
        for f, g in enumerate(self._spec.groups):
            self._group_matrix[f, index[g]] = 1.0

    def __getstate__(self):
        state = self.__dict__.copy()
        for transient in ("_schema", "_spec", "_group_matrix", "_citizen_features"):
            state.pop(transient, None)
        return state

    def __setstate__(self, state):
        state.setdefault("fold_estimators", [])  # models saved before intervals existed
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

    # ---- scores ----------------------------------------------------------------------------
    def log_odds(self, X: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return a * self.estimator.margin(X) + b

    def probability(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(self.log_odds(X))

    def interval(self, X: np.ndarray, log_odds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """95% model-uncertainty interval: the score's log-odds +- 1.96 x the standard deviation
        of the cross-validation models' calibrated log-odds. It reflects how much the score
        depends on which persons the model was trained on, not the chance of the outcome."""
        centre = self.log_odds(X) if log_odds is None else log_odds
        if len(self.fold_estimators) < 2:
            return sigmoid(centre), sigmoid(centre)
        a, b = self.calibration
        folds = np.stack([a * e.margin(X) + b for e in self.fold_estimators])
        spread = 1.96 * folds.std(axis=0, ddof=1)
        return sigmoid(centre - spread), sigmoid(centre + spread)

    def explain(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-group contributions (n, G) and base values (n,) in calibrated log-odds.

        base + contributions.sum(1) (`explained_log_odds`) equals log_odds(X) to float64
        rounding: both come from the same compiled trees."""
        a, b = self.calibration
        parts = self.estimator.contributions(np.asarray(X, dtype=np.float64)).astype(np.float64)
        base = a * parts[:, -1] + b
        return (a * parts[:, :-1]) @ self._group_matrix, base

    @staticmethod
    def explained_log_odds(contributions: np.ndarray, base: np.ndarray) -> np.ndarray:
        return base + contributions.sum(axis=1)

    # ---- tables -> features -> scores ---------------------------------------------------------
    def features(self, requests: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        return build_features(requests, tables["persons"], tables["measurements"],
                              tables.get("activities", _no_activities()), self._schema)

    def score_frame(self, requests: pd.DataFrame, tables: dict[str, pd.DataFrame],
                    explain: bool = False) -> pd.DataFrame:
        """person_id, as_of, probability (and contributions per group) for each request."""
        X = self.features(requests, tables).to_numpy()
        out = requests[["person_id", "as_of"]].reset_index(drop=True).copy()
        out["probability"] = self.probability(X)
        if explain:
            contributions, base = self.explain(X)
            # with an explanation, report the probability that the explanation adds up to
            out["probability"] = sigmoid(self.explained_log_odds(contributions, base))
            out["base_value"] = base
            for g, group in enumerate(self.groups):
                out[f"contribution__{group}"] = contributions[:, g]
        return out


def _no_activities() -> pd.DataFrame:
    return pd.DataFrame({"person_id": pd.Series(dtype="string"), "kind": pd.Series(dtype="string"),
                         "start": pd.Series(dtype="datetime64[s]"), "end": pd.Series(dtype="datetime64[s]")})
