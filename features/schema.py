"""The indicator schema: the one place that knows which indicators exist.

An instrument is data (a TOML file), so another instrument (a Swedish adaptation with 8 items on
a 1-10 scale, say) loads with no code change. BIP's 11 indicators are the default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RESPONDENTS = ("citizen", "caseworker")
DIRECTIONS = ("higher_is_more_ready", "lower_is_more_ready")
DEFAULT_SCHEMA_PATH = Path(__file__).parent / "schemas" / "bip11.toml"


class SchemaError(ValueError):
    """The schema file itself is malformed."""


@dataclass(frozen=True)
class Indicator:
    key: str
    label_da: str
    label_en: str
    respondents: tuple[str, ...]
    scale_min: int
    scale_max: int
    direction: str
    description: str

    def answered_by(self, respondent: str) -> bool:
        return respondent in self.respondents

    @property
    def allowed(self) -> str:
        return f"an integer from {self.scale_min} to {self.scale_max}"


@dataclass(frozen=True)
class IndicatorSchema:
    name: str
    title: str
    indicators: tuple[Indicator, ...]

    def __post_init__(self):
        # looked up many times per request: built once per schema (frozen, hence object.__setattr__)
        object.__setattr__(self, "_by_key", {i.key: i for i in self.indicators})
        object.__setattr__(self, "_position", {i.key: n for n, i in enumerate(self.indicators)})
        object.__setattr__(self, "scales", {i.key: (i.scale_min, i.scale_max) for i in self.indicators})
        object.__setattr__(self, "key_set", frozenset(self._by_key))
        object.__setattr__(self, "_answered", {r: frozenset(i.key for i in self.indicators if i.answered_by(r))
                                               for r in RESPONDENTS})
        # (key, answer) pairs a row of each respondent may hold: no answer for any key, a value on
        # the scale for the keys it answers (a request's rows are checked against it in one step;
        # scales too long to list leave only the unanswered pairs, and answers then take the long check)
        unanswered = frozenset((i.key, None) for i in self.indicators)
        listed = all(i.scale_max - i.scale_min <= 1000 for i in self.indicators)
        object.__setattr__(self, "_valid_answers", {
            r: unanswered | {(i.key, v) for i in self.indicators if i.answered_by(r) and listed
                             for v in range(i.scale_min, i.scale_max + 1)} for r in RESPONDENTS})
        object.__setattr__(self, "_unanswered", unanswered)

    @property
    def keys(self) -> list[str]:
        return [i.key for i in self.indicators]

    def __getitem__(self, key: str) -> Indicator:
        return self._by_key[key]

    def __contains__(self, key: object) -> bool:
        return key in self.key_set

    def position(self, key: str) -> int:
        """The indicator's place in the schema (its order in tables, features and messages)."""
        return self._position[key]

    def answered_keys(self, respondent: str) -> frozenset:
        """The keys the given respondent answers (empty for anyone else)."""
        return self._answered.get(respondent, frozenset())

    def valid_answers(self, respondent: str) -> frozenset:
        """The (key, answer) pairs a row of this respondent may hold: (key, None) for every
        indicator, (key, v) for v on the scale of each indicator the respondent answers."""
        return self._valid_answers.get(respondent, self._unanswered)

    def keys_for(self, respondent: str) -> list[str]:
        """Indicator keys the given respondent answers, in schema order."""
        return [i.key for i in self.indicators if i.answered_by(respondent)]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "indicators": [
                {
                    "key": i.key,
                    "label_da": i.label_da,
                    "label_en": i.label_en,
                    "respondents": list(i.respondents),
                    "scale": {"min": i.scale_min, "max": i.scale_max},
                    "direction": i.direction,
                    "description": i.description,
                }
                for i in self.indicators
            ],
        }


def _parse_indicator(raw: dict, position: int) -> Indicator:
    where = f"indicator #{position + 1}"
    missing = {"key", "label_da", "label_en", "respondents", "scale", "direction"} - raw.keys()
    if missing:
        raise SchemaError(f"{where}: missing fields {sorted(missing)}")
    respondents = tuple(raw["respondents"])
    bad = [r for r in respondents if r not in RESPONDENTS]
    if bad or not respondents:
        raise SchemaError(f"{where} ({raw['key']}): respondents {bad or '[]'}; allowed {RESPONDENTS}")
    if "caseworker" not in respondents:
        # The caseworker rates every indicator; features rely on that rating existing.
        raise SchemaError(f"{where} ({raw['key']}): the caseworker must be among the respondents")
    if raw["direction"] not in DIRECTIONS:
        raise SchemaError(f"{where} ({raw['key']}): direction {raw['direction']!r}; allowed {DIRECTIONS}")
    lo, hi = int(raw["scale"]["min"]), int(raw["scale"]["max"])
    if lo >= hi:
        raise SchemaError(f"{where} ({raw['key']}): scale min {lo} must be below max {hi}")
    return Indicator(
        key=str(raw["key"]),
        label_da=str(raw["label_da"]),
        label_en=str(raw["label_en"]),
        respondents=respondents,
        scale_min=lo,
        scale_max=hi,
        direction=str(raw["direction"]),
        description=str(raw.get("description", "")),
    )


def schema_from_dict(raw: dict) -> IndicatorSchema:
    items = raw.get("indicator") or raw.get("indicators") or []
    if not items:
        raise SchemaError("the schema lists no indicators")
    indicators = tuple(_parse_indicator(item, n) for n, item in enumerate(items))
    keys = [i.key for i in indicators]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise SchemaError(f"duplicate indicator keys {duplicated}")
    return IndicatorSchema(name=str(raw.get("name", "unnamed")), title=str(raw.get("title", "")),
                           indicators=indicators)


def load_schema(path: str | Path | None = None) -> IndicatorSchema:
    """Load an instrument from a TOML file; BIP's 11 indicators when no path is given."""
    return _load_cached(str(Path(path or DEFAULT_SCHEMA_PATH).resolve()))


@lru_cache(maxsize=8)
def _load_cached(path: str) -> IndicatorSchema:
    with open(path, "rb") as handle:
        return schema_from_dict(tomllib.load(handle))
