"""The reference profile: what the model's training population looked like, as counts.

Per indicator and respondent two aspects, read from the model's own feature columns so the
training profile and the service's window are counted by the same code:
- rating: the rating on record at the occasion (`{key}__cw_level`, `{key}__cit_level`), one
  category per scale value plus `missing` (no rating on record: missingness);
- change: the change since the previous measurement (`__cw_change_prev`, `__cit_change_prev`),
  one category per possible step (0 at a first measurement).
And the score: calibrated probability in ten bins cut at the training population's deciles.
Counts only: no ids, no rows.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timezone

import numpy as np

from features.build import feature_spec
from features.schema import IndicatorSchema

PROFILE_ARTIFACT = "monitoring/reference_profile.json"
SCORE = "score"
SCORE_FINE = "score_fine"      # fine probability bins for the label-free estimates
FINE_BINS = 400                # width 0.0025: expected AUC from binned scores is within 1e-3 of exact
_RESPONDENTS = (("caseworker", "cw"), ("citizen", "cit"))


def aspect_definitions(schema: IndicatorSchema) -> dict[str, dict]:
    """Every (indicator, respondent, aspect) the profile counts, with its feature column and
    categories; respondents only where the schema says they answer."""
    out = {}
    for indicator in schema.indicators:
        steps = indicator.scale_max - indicator.scale_min
        for respondent, short in _RESPONDENTS:
            if not indicator.answered_by(respondent):
                continue
            base = {"indicator": indicator.key, "respondent": respondent}
            out[f"{indicator.key}/{respondent}/rating"] = {
                **base, "aspect": "rating", "column": f"{indicator.key}__{short}_level",
                "categories": [str(v) for v in range(indicator.scale_min, indicator.scale_max + 1)] + ["missing"]}
            out[f"{indicator.key}/{respondent}/change"] = {
                **base, "aspect": "change", "column": f"{indicator.key}__{short}_change_prev",
                "categories": [str(v) for v in range(-steps, steps + 1)] + ["missing"]}
    return out


def _categories_of(values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape, "missing", dtype=object)
    present = ~np.isnan(values)
    out[present] = np.round(values[present]).astype(np.int64).astype(str)
    return out


def count_aspects(definitions: dict[str, dict], names: list[str], X: np.ndarray, probability: np.ndarray,
                  score_edges: list[float]) -> dict[str, dict[str, int]]:
    """Counts per aspect and category for feature rows X (columns in `names` order) and their
    calibrated probabilities; values outside an aspect's categories count as `missing`."""
    index = {name: i for i, name in enumerate(names)}
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    out: dict[str, dict[str, int]] = {}
    for aspect, definition in definitions.items():
        values = X[:, index[definition["column"]]]
        labels = _categories_of(values)
        known = np.isin(labels, definition["categories"])
        labels = np.where(known, labels, "missing")
        categories, counts = np.unique(labels, return_counts=True)
        out[aspect] = {str(c): int(n) for c, n in zip(categories, counts)}
    probability = np.asarray(probability, dtype=np.float64).ravel()
    score_bins = np.searchsorted(np.asarray(score_edges), probability, side="right")
    out[SCORE] = {str(b): int(n) for b, n in zip(*np.unique(score_bins, return_counts=True))}
    fine = np.clip((probability * FINE_BINS).astype(int), 0, FINE_BINS - 1)
    out[SCORE_FINE] = {str(b): int(n) for b, n in zip(*np.unique(fine, return_counts=True))}
    return out


def reference_profile(model, X: np.ndarray, probability: np.ndarray | None = None) -> dict:
    """The profile of a training population: X are the model's feature rows of the training
    occasions (columns in model.spec order), `probability` their calibrated scores (computed
    when not given). Returns a JSON-ready dict (see the module docstring)."""
    schema = model.schema
    spec = feature_spec(schema)
    if probability is None:
        probability = model.probability(X)
    definitions = aspect_definitions(schema)
    edges = np.unique(np.quantile(probability, np.linspace(0.1, 0.9, 9))).tolist()
    counts = count_aspects(definitions, spec.names, X, probability, edges)
    aspects = {name: {**definition, "counts": counts[name]} for name, definition in definitions.items()}
    score_categories = [str(i) for i in range(len(edges) + 1)]
    aspects[SCORE] = {"indicator": None, "respondent": None, "aspect": "score", "column": None,
                      "categories": score_categories, "edges": edges, "counts": counts[SCORE]}
    missing = {name.rsplit("/", 1)[0]: counts[name].get("missing", 0) / max(len(X), 1)
               for name, d in definitions.items() if d["aspect"] == "rating"}
    from monitoring.estimate import expected_performance
    return {"format": 1, "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "schema": schema.name, "n": int(len(X)), "feature_names": spec.names, "aspects": aspects,
            "missingness": missing, "fine_bins": FINE_BINS, "score_fine": counts[SCORE_FINE],
            "expected": expected_performance(probability)}


def _rounded(value: float, categories: dict, missing):
    """A value not found as it is: rounded half to even as count_aspects rounds (NaN: missing)."""
    return missing if value != value else categories.get(float(round(value)), missing)


class ProfileCounter:
    """Counts new rows in a profile's own categories and score bins; built once per profile
    (the service keeps one per model version), with a fast path for one row per request."""

    def __init__(self, profile: dict):
        self.profile = profile
        self.definitions = {k: v for k, v in profile["aspects"].items() if k != SCORE}
        self.names = profile["feature_names"]
        self.edges = profile["aspects"][SCORE]["edges"]
        index = {name: i for i, name in enumerate(self.names)}
        # rating levels and changes are whole numbers: one dict lookup per aspect gives the
        # (aspect, category) pair, made once here (NaN and anything unexpected are rounded or
        # fall through to "missing", as count_aspects does)
        self._pair_plan = [(index[d["column"]], {float(c): (aspect, c) for c in d["categories"] if c != "missing"},
                            (aspect, "missing")) for aspect, d in self.definitions.items()]
        self._score_pairs = [(SCORE, str(b)) for b in range(len(self.edges) + 1)]
        self._fine_pairs = [(SCORE_FINE, str(b)) for b in range(FINE_BINS)]

    def count(self, X: np.ndarray, probability) -> dict[str, dict[str, int]]:
        """Counts per aspect and category for feature rows X and their probabilities."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        probability = np.atleast_1d(np.asarray(probability, dtype=np.float64))
        if len(X) == 1:
            return self._count_row(X[0], float(probability[0]))
        return count_aspects(self.definitions, self.names, X, probability, self.edges)

    def row_categories(self, x: list[float], p: float) -> list[tuple[str, str]]:
        """One row's (aspect, category) pairs, score bins included: what count() gives for a
        single row, as the pairs ScoreWindow.observe_row adds (x: the feature row as floats)."""
        out = [categories.get(x[column]) or _rounded(x[column], categories, missing)
               for column, categories, missing in self._pair_plan]
        out.append(self._score_pairs[bisect.bisect_right(self.edges, p)])
        out.append(self._fine_pairs[min(max(int(p * FINE_BINS), 0), FINE_BINS - 1)])
        return out

    def _count_row(self, x: np.ndarray, p: float) -> dict[str, dict[str, int]]:
        return {aspect: {category: 1} for aspect, category in self.row_categories(x.tolist(), p)}


def count_for_profile(profile: dict, X: np.ndarray, probability: np.ndarray) -> dict[str, dict[str, int]]:
    """Counts of new rows in the profile's own categories and score bins."""
    return ProfileCounter(profile).count(X, probability)


def log_reference_profile(run_id: str, model, X: np.ndarray) -> dict:
    """The training hook: the profile of the training rows X, logged to the model's MLflow run
    as monitoring/reference_profile.json. One call from the training pipeline."""
    from mlflow import MlflowClient
    profile = reference_profile(model, X)
    MlflowClient().log_dict(run_id, profile, PROFILE_ARTIFACT)
    return profile


def load_reference_profile(run_id: str) -> dict | None:
    """The profile logged with a model's run, or None for models trained before profiles."""
    import os

    import mlflow
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in JSON logs
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{PROFILE_ARTIFACT}")
    except Exception:  # no such artifact (an older model) or the store is unreachable
        return None
