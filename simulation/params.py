"""True parameters of the synthetic cohort, read from a TOML file and laid out as arrays.

Arrays follow the indicator schema's order, so the engine never names an indicator.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.contract import ACTIVITY_CLASSES, ACTIVITY_KINDS
from features.schema import IndicatorSchema

DEFAULT_TRUTH_PATH = Path(__file__).parent / "bip11_truth.toml"


@dataclass
class TrueParameters:
    raw: dict
    hazard_cw: np.ndarray        # (K,) log-hazard per step of the caseworker's rating
    hazard_cit: np.ndarray       # (K,) log-hazard per step of the citizen's rating
    citizen_keys: np.ndarray     # (K,) bool: the citizen answers this indicator
    belief_index: int            # position of the caseworker's belief in the schema
    readiness_weights: np.ndarray  # (K,) weights of the readiness that drives belief & assignment
    scale_min: np.ndarray
    scale_max: np.ndarray
    kinds: list[str]
    job_oriented: np.ndarray     # (A,) bool
    assign_intercept: np.ndarray
    assign_readiness: np.ndarray
    end_per_month: np.ndarray
    hazard_alone: np.ndarray
    hazard_parallel: np.ndarray
    progression_alone: np.ndarray
    progression_parallel: np.ndarray

    def section(self, name: str) -> dict:
        return self.raw[name]


def load_true_parameters(schema: IndicatorSchema, path: str | Path | None = None) -> TrueParameters:
    with open(path or DEFAULT_TRUTH_PATH, "rb") as handle:
        raw = tomllib.load(handle)
    keys = schema.keys
    unknown = (set(raw["hazard"]["indicator"]) | set(raw["hazard"]["citizen_indicator"])) - set(keys)
    if unknown or raw["roles"]["belief"] not in keys:
        raise ValueError(f"truth parameters name indicators not in schema {schema.name!r}: "
                         f"{sorted(unknown) or raw['roles']['belief']}")
    hazard_cw = np.array([raw["hazard"]["indicator"].get(k, 0.0) for k in keys])
    hazard_cit = np.array([raw["hazard"]["citizen_indicator"].get(k, 0.0) for k in keys])
    belief_index = keys.index(raw["roles"]["belief"])
    weights = hazard_cw + hazard_cit
    weights[belief_index] = 0.0
    activity = raw["activity"]
    column = lambda field: np.array([activity[k][field] for k in ACTIVITY_KINDS])  # noqa: E731
    return TrueParameters(
        raw=raw,
        hazard_cw=hazard_cw,
        hazard_cit=hazard_cit,
        citizen_keys=np.array([schema[k].answered_by("citizen") for k in keys]),
        belief_index=belief_index,
        readiness_weights=weights / weights.sum(),
        scale_min=np.array([schema[k].scale_min for k in keys]),
        scale_max=np.array([schema[k].scale_max for k in keys]),
        kinds=list(ACTIVITY_KINDS),
        job_oriented=np.array([ACTIVITY_CLASSES[k] == "job_oriented" for k in ACTIVITY_KINDS]),
        assign_intercept=column("assign_intercept"),
        assign_readiness=column("assign_readiness"),
        end_per_month=column("end_per_month"),
        hazard_alone=column("hazard_alone"),
        hazard_parallel=column("hazard_parallel"),
        progression_alone=column("progression_alone"),
        progression_parallel=column("progression_parallel"),
    )
