"""Names of the score's input groups for people, Danish first, English beside it: the indicator
schema's labels, or a fixed name for the other groups. Serving and the evaluation reports share them."""

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
