"""Words for people: Danish first, English beside it."""

from __future__ import annotations

from features.schema import IndicatorSchema

OTHER_LABELS = {
    "measurement_history": ("Målingshistorik", "Measurement history"),
    "caseworker_change": ("Skift af sagsbehandler", "Change of caseworker"),
    "activity_virksomhedspraktik": ("Virksomhedspraktik", "Company internship"),
    "activity_loentilskud": ("Løntilskud", "Wage-subsidised job"),
    "activity_mentor": ("Mentor", "Mentor"),
    "activity_opkvalificering": ("Opkvalificering", "Upgrading (courses, education)"),
    "activity_sundhed_social": ("Sundheds- og sociale indsatser", "Health and social activities"),
    "activity_parallel": ("Indsatser sideløbende med en jobrettet indsats", "Activities in parallel with a job-oriented one"),
    "age": ("Alder", "Age"),
    "gender": ("Køn", "Gender"),
    "origin": ("Herkomst", "Origin"),
    "benefit_group": ("Ydelsesgruppe", "Benefit group"),
    "enrolment": ("Tid i forløbet", "Time enrolled"),
    "jobcenter": ("Jobcenter (lokalt arbejdsmarked)", "Jobcentre (local labour market)"),
}


def labels(group: str, schema: IndicatorSchema) -> tuple[str, str]:
    """The group's name in Danish and English: the schema's indicator label, or a fixed one."""
    if group in schema:
        return schema[group].label_da, schema[group].label_en
    return OTHER_LABELS.get(group, (group, group.replace("_", " ")))


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
