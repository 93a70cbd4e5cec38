"""Request and response bodies of the API (pydantic): the simulator's tables, nested per citizen."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from features.contract import ACTIVITY_KINDS, BENEFIT_GROUPS, GENDERS, ORIGINS

Gender = Literal[GENDERS]  # type: ignore[valid-type]
Origin = Literal[ORIGINS]  # type: ignore[valid-type]
BenefitGroup = Literal[BENEFIT_GROUPS]  # type: ignore[valid-type]
Kind = Literal[tuple(ACTIVITY_KINDS)]  # type: ignore[valid-type]
Id = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")


def _whole_unicode(text: str) -> str:
    """Refuse lone surrogates (\\ud800): they cannot be written as UTF-8, in answers or logs."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text without lone surrogate code points (valid Unicode)") from None
    return text


def _iso_date(value):
    """Dates only as ISO 8601 text (YYYY-MM-DD): no timestamps as numbers, no other formats."""
    if isinstance(value, date):
        return value
    # what re.fullmatch(r"\d{4}-\d{2}-\d{2}") accepts (\d: any Unicode decimal digit, as
    # str.isdecimal), at a third of its cost: a body carries dozens of dates
    if not (isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-"
            and (value[:4] + value[5:7] + value[8:]).isdecimal()):
        raise ValueError("a date in ISO 8601 (YYYY-MM-DD)")
    return value


# text fields: valid Unicode, bounded (the settings' max_string_chars is 200; these are tighter)
Text = Annotated[str, AfterValidator(_whole_unicode)]
IsoDate = Annotated[date, BeforeValidator(_iso_date),
                    Field(json_schema_extra={"format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"})]
IndicatorKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
# ratings and years are whole JSON numbers: true, "3", 3.5, NaN, Infinity and 1e309 are refused
Rating = Optional[StrictInt]


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str = Id
    jobcenter: Text = Field(min_length=1, max_length=64)
    birth_year: StrictInt = Field(ge=1900, le=2100, description="a plausible year is checked against today: "
                                  "refused outside the settings' birth_year_min .. this year - min_age_years")
    gender: Gender
    origin: Origin
    benefit_group: BenefitGroup
    enrolled_on: IsoDate


class Measurement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measured_at: IsoDate
    respondent: Literal["citizen", "caseworker"]
    caseworker_id: Optional[Text] = Field(default=None, min_length=1, max_length=64)
    values: dict[IndicatorKey, Rating] = Field(max_length=64,
                                               description="indicator key -> rating on its scale (or null)")


class Activity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    start: IsoDate
    end: Optional[IsoDate] = None


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person: Person
    measurements: list[Measurement] = Field(min_length=1, max_length=1000)
    activities: list[Activity] = Field(default_factory=list, max_length=1000)
    as_of: Optional[IsoDate] = Field(default=None, description="default: the last measurement")


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


class CurvePoint(BaseModel):
    horizon_months: int
    probability: float = Field(description="job or education within this many months; never lower than a shorter horizon's")
    interval: Interval


class ScoreResponse(BaseModel):
    person_id: str
    as_of: date
    horizon_months: int = Field(description="the horizon of `probability` and of the explanation")
    probability: float
    interval: Interval
    curve: list[CurvePoint] = Field(description="the readiness curve: probability within each horizon (e.g. 3, 6, "
                                    "12, 24 months), non-decreasing, each with its interval")
    model: ModelRef
    explanation: Explanation
    change: Change
