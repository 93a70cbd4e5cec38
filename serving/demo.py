"""The synthetic cohort behind the caseworker page's chooser (never real people)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from fastapi import HTTPException


class DemoCohort:
    """Read once, on first use."""

    def __init__(self, folder):
        self.folder = Path(folder) if folder else None
        self._tables = None

    def _load(self) -> dict:
        if self._tables is None:
            if self.folder is None or not (self.folder / "persons.parquet").exists():
                raise HTTPException(404, detail="no demo cohort here (run bip simulate)")
            self._tables = {name: pd.read_parquet(self.folder / f"{name}.parquet")
                            for name in ("persons", "measurements", "activities")}
        return self._tables

    def listing(self, limit: int = 200) -> list[dict]:
        tables = self._load()
        counts = tables["measurements"].groupby("person_id")["measured_at"].nunique()
        persons = tables["persons"].drop_duplicates("person_id").head(limit)
        return [{"person_id": p, "jobcenter": j, "measurements": int(counts.get(p, 0))}
                for p, j in zip(persons["person_id"], persons["jobcenter"])]

    def body(self, person_id: str) -> dict:
        tables = self._load()
        if not (tables["persons"]["person_id"] == person_id).any():
            raise HTTPException(404, detail="no demo citizen with that id")
        return citizen_body(tables, person_id)


def citizen_body(tables: dict, person_id: str) -> dict:
    """One citizen's tables as a POST /v1/score body."""
    p = tables["persons"].set_index("person_id").loc[person_id]
    m = tables["measurements"][tables["measurements"]["person_id"] == person_id].sort_values(["measured_at", "respondent"])
    a = tables["activities"][tables["activities"]["person_id"] == person_id]
    keys = [c for c in m.columns if c not in ("person_id", "measured_at", "respondent", "caseworker_id")]
    day = lambda d: None if pd.isna(d) else str(pd.Timestamp(d).date())  # noqa: E731
    return {
        "person": {"person_id": person_id, "jobcenter": p["jobcenter"], "birth_year": int(p["birth_year"]),
                   "gender": p["gender"], "origin": p["origin"], "benefit_group": p["benefit_group"],
                   "enrolled_on": day(p["enrolled_on"])},
        "measurements": [{"measured_at": day(r["measured_at"]), "respondent": r["respondent"],
                          "caseworker_id": None if pd.isna(r["caseworker_id"]) else r["caseworker_id"],
                          "values": {k: None if pd.isna(r[k]) else int(r[k]) for k in keys}}
                         for _, r in m.iterrows()],
        "activities": [{"kind": r["kind"], "start": day(r["start"]), "end": day(r["end"])} for _, r in a.iterrows()],
        "as_of": None,
    }
