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


_KEPT = 10_000  # pieces kept per kind, a bound that is never reached in use


class GroupReasons:
    """reasons() of one group, the same sentences at a fraction of the cost: the service keeps
    one per group and loaded model. The group's names and scale are looked up once, each
    sentence's opening (what the part is: its ratings, running or not) is kept per state, and
    each effect ("raises the probability by 2.5 percentage points") per size as written and
    sign, which is all _effect reads; a request then joins two kept pieces. Both stay small: a
    few ratings on a short scale, and sizes from 0.0 to 100.0 in tenths (capped all the same).
    tests/test_score_path.py checks every group against reasons() over a grid."""

    _effects: dict = {}  # (size as written, raises) or None (negligible) -> (Danish, Danish verb first, English)

    def __init__(self, group: str, schema: IndicatorSchema):
        self.da_label, self.en_label = labels(group, schema)
        self.top = schema[group].scale_max if group in schema else None
        self._openings: dict = {}

    def __call__(self, pp: float, caseworker: float | None, citizen: float | None,
                 active: bool | None = None) -> tuple[str, str]:
        size = abs(pp)
        key = None if size < NEGLIGIBLE_PP else (f"{size:.1f}", pp >= 0)
        effect = self._effects.get(key)
        if effect is None:
            da, en = _effect(pp)
            verb, rest = da.split(" ", 1)  # Danish puts the verb before "det" after a leading phrase
            effect = (da, f"{verb} det {rest}", en)
            if len(self._effects) < _KEPT:
                self._effects[key] = effect
        rated = self.top is not None and caseworker is not None
        state = (caseworker, citizen, active) if rated else (None, None, active)
        opening = self._openings.get(state)
        if opening is None:
            opening = self._opening(*state)
            if len(self._openings) < _KEPT:
                self._openings[state] = opening
        leading, da_open, en_open = opening
        if leading:  # "<what>; det <effect>." and "<what>; this <effect>."
            return f"{da_open}; det {effect[0]}.", f"{en_open}; this {effect[2]}."
        return f"{da_open} {effect[1]}.", f"{en_open}, this {effect[2]}."

    def _opening(self, caseworker, citizen, active) -> tuple[bool, str, str]:
        """(the effect follows "; det", the Danish opening, the English opening) of one state."""
        da_label, en_label, top = self.da_label, self.en_label, self.top
        if caseworker is not None:
            da = f"{da_label}: sagsbehandleren vurderer {int(caseworker)} af {top}"
            en = f"{en_label}: the caseworker rates {int(caseworker)} of {top}"
            if citizen is not None:
                da += f", borgeren {int(citizen)} af {top}"
                en += f", the citizen {int(citizen)} of {top}"
            return True, da, en
        if active is True:
            return True, f"{da_label} er i gang", f"{en_label}: running now"
        if active is False:
            return (False, f"{da_label} er ikke i gang nu. Sammenlignet med en typisk borger i modellens data",
                    f"{en_label}: not running now. Compared with a typical citizen in the model's data")
        return (False, f"{da_label}: sammenlignet med en typisk borger i modellens data",
                f"{en_label}: compared with a typical citizen in the model's data")
