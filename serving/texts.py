"""Words for people: Danish first, English beside it."""

from __future__ import annotations

from features.names import OTHER_LABELS, labels  # noqa: F401  (the names live with the features)
from features.schema import IndicatorSchema


def _pp_da(pp: float) -> str:
    return f"{abs(pp):.1f}".replace(".", ",")


# Below this size (percentage points) a part is said to change the score hardly at all, rather
# than "lowers it by 0.0 percentage points".
NEGLIGIBLE_PP = 0.05


def _effect(pp: float) -> tuple[str, str]:
    if abs(pp) < NEGLIGIBLE_PP:
        return ("ændrer næsten ikke sandsynligheden (under 0,1 procentpoint)",
                "hardly changes the probability (less than 0.1 percentage points)")
    up = pp >= 0
    return (f"{'hæver' if up else 'sænker'} sandsynligheden med {_pp_da(pp)} procentpoint",
            f"{'raises' if up else 'lowers'} the probability by {abs(pp):.1f} percentage points")


def reasons(group: str, schema: IndicatorSchema, pp: float, caseworker: float | None,
            citizen: float | None, active: bool | None = None) -> tuple[str, str]:
    """One sentence in Danish and one in English on why this part moves the score.

    Every part is measured against the model's starting point (a typical citizen in its data),
    which is why something absent, such as an activity not running, can lower the score."""
    da_label, en_label = labels(group, schema)
    da_effect, en_effect = _effect(pp)
    if group in schema and caseworker is not None:
        top = schema[group].scale_max
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
