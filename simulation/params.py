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
# `bip simulate --regime`: the kind world (the default, whose seeds' tables never change) and the
# realistic one (hidden trait, interaction, answers missing not at random, rater effects)
REGIMES = {"default": DEFAULT_TRUTH_PATH, "realistic": Path(__file__).parent / "bip11_realistic.toml"}


@dataclass
class Realism:
    """The realistic regime's extra mechanisms (absent in the default regime), laid out as arrays.
    The hidden trait (motivation) is standard normal per person and never recorded."""

    trait_hazard: float              # log-hazard per SD of the trait
    trait_initial: np.ndarray        # (K,) rating steps per SD at enrolment
    trait_pull: np.ndarray           # (K,) level per SD that later ratings revert towards
    trait_belief: float              # belief steps per SD (the caseworker senses some of it)
    take_up: np.ndarray              # (A,) log-odds of starting each kind per SD
    interaction: tuple[int, int, float]  # (k1, k2, log-hazard per step x step, centred ratings)
    missing_base: float              # citizen form skipped at trait 0 and readiness 3
    missing_trait: float             # log-odds of skipping per SD of the trait (lower: skip more)
    missing_readiness: float         # log-odds of skipping per readiness step (lower: skip more)
    leniency_sd: float               # caseworker's offset on every signal rating, steps
    drift_sd_per_year: float         # each caseworker's offset drifts linearly, SD per year


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
    realism: Realism | None = None   # None: the default regime

    @property
    def regime(self) -> str:
        return "default" if self.realism is None else "realistic"

    def section(self, name: str) -> dict:
        return self.raw[name]


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_parameter_file(path: str | Path) -> dict:
    """A parameter TOML; `extends = "other.toml"` (beside it) is read first and overridden."""
    path = Path(path)
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    base = raw.pop("extends", None)
    return _merge(read_parameter_file(path.parent / base), raw) if base else raw


def load_true_parameters(schema: IndicatorSchema, path: str | Path | None = None,
                         regime: str | None = None) -> TrueParameters:
    """The true parameters from `path`, or from the file of `regime` (default: the default regime)."""
    if regime is not None and regime not in REGIMES:
        raise ValueError(f"regime {regime!r}: allowed {sorted(REGIMES)}")
    raw = read_parameter_file(path or REGIMES[regime or "default"])
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
        realism=_realism(raw["realistic"], keys) if "realistic" in raw else None,
    )


def _realism(r: dict, keys: list[str]) -> Realism:
    trait = r["trait"]
    per_key = lambda table: np.array([table.get(k, 0.0) for k in keys])  # noqa: E731
    unknown = (set(trait["initial"]) | set(trait["pull"]) | {r["interaction"]["first"], r["interaction"]["second"]}) - set(keys)
    if unknown:
        raise ValueError(f"realistic parameters name indicators not in the schema: {sorted(unknown)}")
    missing, raters = r["missing"], r["raters"]
    return Realism(
        trait_hazard=trait["hazard"],
        trait_initial=per_key(trait["initial"]),
        trait_pull=per_key(trait["pull"]),
        trait_belief=trait["belief"],
        take_up=np.array([r["take_up"][k] for k in ACTIVITY_KINDS]),
        interaction=(keys.index(r["interaction"]["first"]), keys.index(r["interaction"]["second"]),
                     r["interaction"]["coefficient"]),
        missing_base=missing["base"],
        missing_trait=missing["trait"],
        missing_readiness=missing["readiness"],
        leniency_sd=raters["leniency_sd"],
        drift_sd_per_year=raters["drift_sd_per_year"],
    )
