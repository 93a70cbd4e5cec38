"""Words for people: Danish first, English beside it."""

from __future__ import annotations

from features.names import OTHER_LABELS, labels  # noqa: F401  (the names live with the features)
from features.schema import IndicatorSchema


# Below this size (percentage points) a part is said to change the score hardly at all, rather
# than "lowers it by 0.0 percentage points".
NEGLIGIBLE_PP = 0.05
_NEGLIGIBLE = ("ændrer næsten ikke sandsynligheden (under 0,1 procentpoint)",
               "hardly changes the probability (less than 0.1 percentage points)")


def _effect(pp: float) -> tuple[str, str]:
    size = abs(pp)
    if size < NEGLIGIBLE_PP:
        return _NEGLIGIBLE
    en = f"{size:.1f}"
    da = en.replace(".", ",")  # Danish decimal comma
    if pp >= 0:
        return f"hæver sandsynligheden med {da} procentpoint", f"raises the probability by {en} percentage points"
    return f"sænker sandsynligheden med {da} procentpoint", f"lowers the probability by {en} percentage points"


def reasons(group: str, schema: IndicatorSchema, pp: float, caseworker: float | None,
            citizen: float | None, active: bool | None = None) -> tuple[str, str]:
    """One sentence in Danish and one in English on why this part moves the score.

    Every part is measured against the model's starting point (a typical citizen in its data),
    which is why something absent, such as an activity not running, can lower the score."""
    return GroupReasons(group, schema)(pp, caseworker, citizen, active)


class GroupReasons:
    """reasons() of one group, with what the sentences say about the group (its names, whether it
    is an indicator and its scale's top) looked up once: the service keeps one per group and
    loaded model, and a request then only writes its numbers into the sentences."""

    def __init__(self, group: str, schema: IndicatorSchema):
        self.da_label, self.en_label = labels(group, schema)
        self.top = schema[group].scale_max if group in schema else None

    def __call__(self, pp: float, caseworker: float | None, citizen: float | None,
                 active: bool | None = None) -> tuple[str, str]:
        da_label, en_label, top = self.da_label, self.en_label, self.top
        da_effect, en_effect = _effect(pp)
        if top is not None and caseworker is not None:
            da = f"{da_label}: sagsbehandleren vurderer {int(caseworker)} af {top}"
            en = f"{en_label}: the caseworker rates {int(caseworker)} of {top}"
            if citizen is not None:
                da += f", borgeren {int(citizen)} af {top}"
                en += f", the citizen {int(citizen)} of {top}"
            return f"{da}; det {da_effect}.", f"{en}; this {en_effect}."
        if active is True:  # an activity kind that runs now
            return (f"{da_label} er i gang; det {da_effect}.", f"{en_label}: running now; this {en_effect}.")
        verb, rest = da_effect.split(" ", 1)  # Danish puts the verb before "det" after a leading phrase
        if active is False:
            return (f"{da_label} er ikke i gang nu. Sammenlignet med en typisk borger i modellens data {verb} det {rest}.",
                    f"{en_label}: not running now. Compared with a typical citizen in the model's data, this {en_effect}.")
        return (f"{da_label}: sammenlignet med en typisk borger i modellens data {verb} det {rest}.",
                f"{en_label}: compared with a typical citizen in the model's data, this {en_effect}.")
