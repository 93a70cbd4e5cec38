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


def _verb_first(da_effect: str) -> str:
    """Danish puts the verb before "det" after a leading phrase: "hæver det sandsynligheden ..."."""
    verb, rest = da_effect.split(" ", 1)
    return f"{verb} det {rest}"


def _opening(da_label: str, en_label: str, top: int | None, caseworker: float | None, citizen: float | None,
             active: bool | None) -> tuple[bool, str, str]:
    """What the part is (its ratings, running or not), in both languages, and whether the effect
    follows it after "; det" / "; this" (True) or as a new clause (False). `top` is the
    indicator's scale maximum, None for a part that is not an indicator."""
    if top is not None and caseworker is not None:
        da = f"{da_label}: sagsbehandleren vurderer {int(caseworker)} af {top}"
        en = f"{en_label}: the caseworker rates {int(caseworker)} of {top}"
        if citizen is not None:
            da += f", borgeren {int(citizen)} af {top}"
            en += f", the citizen {int(citizen)} of {top}"
        return True, da, en
    if active is True:  # an activity kind that runs now
        return True, f"{da_label} er i gang", f"{en_label}: running now"
    if active is False:
        return (False, f"{da_label} er ikke i gang nu. Sammenlignet med en typisk borger i modellens data",
                f"{en_label}: not running now. Compared with a typical citizen in the model's data")
    return (False, f"{da_label}: sammenlignet med en typisk borger i modellens data",
            f"{en_label}: compared with a typical citizen in the model's data")


def _sentences(opening: tuple[bool, str, str], da_effect: str, da_verb_first: str, en_effect: str) -> tuple[str, str]:
    leading, da_open, en_open = opening
    if leading:
        return f"{da_open}; det {da_effect}.", f"{en_open}; this {en_effect}."
    return f"{da_open} {da_verb_first}.", f"{en_open}, this {en_effect}."


def _top(group: str, schema: IndicatorSchema) -> int | None:
    return schema[group].scale_max if group in schema else None


def reasons(group: str, schema: IndicatorSchema, pp: float, caseworker: float | None,
            citizen: float | None, active: bool | None = None) -> tuple[str, str]:
    """One sentence in Danish and one in English on why this part moves the score.

    Every part is measured against the model's starting point (a typical citizen in its data),
    which is why something absent, such as an activity not running, can lower the score."""
    da_effect, en_effect = _effect(pp)
    opening = _opening(*labels(group, schema), _top(group, schema), caseworker, citizen, active)
    return _sentences(opening, da_effect, _verb_first(da_effect), en_effect)


_KEPT = 10_000  # pieces kept per kind, a bound that is never reached in use


class GroupReasons:
    """reasons() of one group, the same sentences (the same pieces: _opening, _effect,
    _sentences) at a fraction of the cost: the service keeps one per group and loaded model.
    The group's names and scale are looked up once, each opening is kept per state, and each
    effect ("raises the probability by 2.5 percentage points") per size as written and sign,
    which is all _effect reads; a request then joins two kept pieces. Both stay small: a few
    ratings on a short scale, and sizes from 0.0 to 100.0 in tenths (capped all the same).
    tests/test_score_path.py checks every group against reasons() over a grid."""

    _effects: dict = {}  # (size as written, raises) or None (negligible) -> (Danish, Danish verb first, English)

    def __init__(self, group: str, schema: IndicatorSchema):
        self.da_label, self.en_label = labels(group, schema)
        self.top = _top(group, schema)
        self._openings: dict = {}

    def __call__(self, pp: float, caseworker: float | None, citizen: float | None,
                 active: bool | None = None) -> tuple[str, str]:
        size = abs(pp)
        key = None if size < NEGLIGIBLE_PP else (f"{size:.1f}", pp >= 0)
        effect = self._effects.get(key)
        if effect is None:
            da, en = _effect(pp)
            effect = (da, _verb_first(da), en)
            if len(self._effects) < _KEPT:
                self._effects[key] = effect
        # only what the opening reads is its key: ratings count for an indicator only
        state = (caseworker, citizen, active) if self.top is not None and caseworker is not None else (None, None, active)
        opening = self._openings.get(state)
        if opening is None:
            opening = _opening(self.da_label, self.en_label, self.top, *state)
            if len(self._openings) < _KEPT:
                self._openings[state] = opening
        return _sentences(opening, *effect)
