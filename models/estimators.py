"""Fitting the estimators behind a ScoringModel: boosted trees, logistic regression, Platt."""

from __future__ import annotations

import numpy as np
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

from models.scoring import LinearEstimator

TREE_DEFAULTS = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "learning_rate": 0.05,
    "min_child_weight": 5,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 2.0,
}


def tree_params(depth: int, monotone: list[int] | None, seed: int, threads: int) -> dict:
    params = {**TREE_DEFAULTS, "max_depth": depth, "seed": seed, "nthread": threads}
    if monotone is not None:
        params["monotone_constraints"] = "(" + ",".join(str(m) for m in monotone) + ")"
    return params


def fit_trees(X: np.ndarray, y: np.ndarray, params: dict, rounds: int, X_val=None, y_val=None,
              early_stopping: int = 40) -> tuple[xgb.Booster, int]:
    """Fit a booster; with validation data, stop early and return the best round count."""
    train = xgb.DMatrix(X.astype(np.float32), label=y)
    if X_val is None:
        booster = xgb.train(params, train, num_boost_round=rounds)
        return booster, rounds
    valid = xgb.DMatrix(X_val.astype(np.float32), label=y_val)
    booster = xgb.train(params, train, num_boost_round=rounds, evals=[(valid, "valid")],
                        early_stopping_rounds=early_stopping, verbose_eval=False)
    return booster, booster.best_iteration + 1


def tree_margin(booster: xgb.Booster, X: np.ndarray, rounds: int) -> np.ndarray:
    return booster.inplace_predict(X.astype(np.float32), predict_type="margin", iteration_range=(0, rounds))


def fit_logistic(X: np.ndarray, y: np.ndarray, C: float = 0.5) -> LinearEstimator:
    """Median-imputed, standardised logistic regression."""
    fill = np.nanmedian(X, axis=0)
    fill = np.where(np.isnan(fill), 0.0, fill)
    filled = np.where(np.isnan(X), fill, X)
    mean, scale = filled.mean(axis=0), filled.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    model = LogisticRegression(C=C, max_iter=2000)
    model.fit((filled - mean) / scale, y)
    return LinearEstimator(fill, mean, scale, model.coef_[0].copy(), float(model.intercept_[0]))


def fit_platt(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) so that sigmoid(a * margin + b) is calibrated; fitted on out-of-fold margins."""
    model = LogisticRegression(C=np.inf, max_iter=1000)
    model.fit(np.asarray(margin).reshape(-1, 1), y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])
