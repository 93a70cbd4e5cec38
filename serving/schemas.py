"""Request and response bodies of the API (pydantic): the simulator's tables, nested per citizen."""

from __future__ import annotations

from datetime import date
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from features.contract import ACTIVITY_KINDS, BENEFIT_GROUPS, GENDERS, ORIGINS

Gender = Literal[GENDERS]  # type: ignore[valid-type]
Origin = Literal[ORIGINS]  # type: ignore[valid-type]
BenefitGroup = Literal[BENEFIT_GROUPS]  # type: ignore[valid-type]
Kind = Literal[tuple(ACTIVITY_KINDS)]  # type: ignore[valid-type]
Id = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str = Id
    jobcenter: str = Field(min_length=1, max_length=64)
    birth_year: int = Field(ge=1900, le=2100)
    gender: Gender
    origin: Origin
    benefit_group: BenefitGroup
    enrolled_on: date


class Measurement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measured_at: date
    respondent: Literal["citizen", "caseworker"]
    caseworker_id: Optional[str] = Field(default=None, min_length=1, max_length=64)
    values: dict[str, Optional[int]] = Field(description="indicator key -> rating on its scale (or null)")


class Activity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    start: date
    end: Optional[date] = None


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person: Person
    measurements: list[Measurement] = Field(min_length=1, max_length=1000)
    activities: list[Activity] = Field(default_factory=list, max_length=1000)
    as_of: Optional[date] = Field(default=None, description="default: the last measurement")


class Interval(BaseModel):
    low: float
    high: float
    method: str


class ModelRef(BaseModel):
    name: str
    version: Optional[str]
    alias: Optional[str]


class Contribution(BaseModel):
    group: str
    kind: Literal["indicator", "other"]
    contribution: float
    contribution_pp: float
    label_da: str
    label_en: str
    reason_da: str
    reason_en: str


class Explanation(BaseModel):
    unit: Literal["log_odds"] = "log_odds"
    base_value: float
    log_odds: float
    contributions: list[Contribution]


class Driver(BaseModel):
    group: str
    label_da: str
    label_en: str
    change: float
    change_pp: float


class Change(BaseModel):
    previous_as_of: Optional[date]
    previous_probability: Optional[float]
    drivers: list[Driver]


class ScoreResponse(BaseModel):
    person_id: str
    as_of: date
    horizon_months: int
    probability: float
    interval: Interval
    model: ModelRef
    explanation: Explanation
    change: Change
