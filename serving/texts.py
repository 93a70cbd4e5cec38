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
    if group in schema:
        return schema[group].label_da, schema[group].label_en
    return OTHER_LABELS.get(group, (group, group.replace("_", " ")))


def _pp_da(pp: float) -> str:
    return f"{abs(pp):.1f}".replace(".", ",")


def reasons(group: str, schema: IndicatorSchema, pp: float, caseworker: float | None,
            citizen: float | None, active: bool | None = None) -> tuple[str, str]:
    """One sentence in Danish and one in English on why this part moves the score."""
    da_label, en_label = labels(group, schema)
    if active is not None:  # an activity kind: say whether it runs now
        da_label += " (i gang)" if active else " (ikke i gang)"
        en_label += " (running)" if active else " (not running)"
    up = pp >= 0
    da_effect = f"{'hæver' if up else 'sænker'} sandsynligheden med {_pp_da(pp)} procentpoint"
    en_effect = f"{'raises' if up else 'lowers'} the probability by {abs(pp):.1f} percentage points"
    if group in schema and caseworker is not None:
        top = schema[group].scale_max
        da = f"{da_label}: sagsbehandleren vurderer {int(caseworker)} af {top}"
        en = f"{en_label}: the caseworker rates {int(caseworker)} of {top}"
        if citizen is not None:
            da += f", borgeren {int(citizen)} af {top}"
            en += f", the citizen {int(citizen)} of {top}"
        return f"{da}; det {da_effect}.", f"{en}; this {en_effect}."
    return f"{da_label} {da_effect}.", f"{en_label} {en_effect}."
