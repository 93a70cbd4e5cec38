"""The data contract shared by files, the API and the simulator (docs/data-contract.md)."""

from __future__ import annotations

# Intervention kinds ("indsatser") and their class. Job-oriented kinds work alone; the others
# only in parallel with a job-oriented one (domain.md).
ACTIVITY_CLASSES: dict[str, str] = {
    "virksomhedspraktik": "job_oriented",
    "loentilskud": "job_oriented",
    "mentor": "support",
    "opkvalificering": "upgrading",
    "sundhed_social": "health_social",
}
ACTIVITY_KINDS: list[str] = list(ACTIVITY_CLASSES)
JOB_ORIENTED_KINDS: list[str] = [k for k, c in ACTIVITY_CLASSES.items() if c == "job_oriented"]

OUTCOME_STATUSES = ("benefit", "job", "education", "other")
SUCCESS_STATUSES = ("job", "education")
RESPONDENTS = ("citizen", "caseworker")
GENDERS = ("female", "male")
ORIGINS = ("danish", "western", "non_western")
BENEFIT_GROUPS = ("aktivitetsparat_kontanthjaelp", "aktivitetsparat_uddannelseshjaelp",
                  "integrationsydelse")

PERSON_COLUMNS = ["person_id", "jobcenter", "birth_year", "gender", "origin", "benefit_group",
                  "enrolled_on"]
MEASUREMENT_BASE_COLUMNS = ["person_id", "measured_at", "respondent", "caseworker_id"]
ACTIVITY_COLUMNS = ["person_id", "kind", "start", "end"]
OUTCOME_COLUMNS = ["person_id", "month", "status"]
TABLES = ("persons", "measurements", "activities", "outcomes")
# The 10 BIP jobcentres; the local labour market enters the model through them.
JOBCENTERS = ["Vordingborg", "Viborg", "Horsens", "Sønderborg", "Rebild", "Aarhus", "Thisted",
              "Vejen", "Silkeborg", "Faxe"]
