"""Citizen sources: where the service reads one citizen's history, keyed by the pseudonymous person_id.

One read-only interface, two implementations:
- `TableCitizenSource`: the embedded default over a folder of contract tables (Parquet or CSV),
  read once on first use; needs nothing started (the simulator's cohort in a demo).
- `SqlCitizenSource`: the same tables in a SQL database through SQLAlchemy (PostgreSQL with
  psycopg in production); every session is read-only, so the service cannot change a citizen.

A caller may be bound to jobcentres: a person outside them is answered exactly as an unknown one
(`CitizenNotFound`), so a caseworker cannot learn who exists elsewhere. The service keeps nothing
about citizens: each call reads the history, and the caller scores it.

The SQL tables are the data contract (features/contract.py, one column per indicator of the
schema); `contract_metadata` defines them and `load_tables` writes a folder of tables into a
database (`bip db load`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from features.contract import (
    ACTIVITY_COLUMNS,
    MEASUREMENT_BASE_COLUMNS,
    OUTCOME_COLUMNS,
    PERSON_COLUMNS,
    TABLES,
)
from features.schema import IndicatorSchema, load_schema

HISTORY_TABLES = ("persons", "measurements", "activities")


class CitizenNotFound(LookupError):
    """No such person for this caller: unknown, or outside the caller's jobcentres (one answer for both)."""

    def __init__(self, person_id: str):
        self.person_id = person_id
        super().__init__("no citizen with this person_id")  # the id itself stays out of messages and logs


class CitizenSourceUnavailable(RuntimeError):
    """The source cannot be read (no folder, no database); the reason is for the operator."""


class CitizenSource(ABC):
    """Read-only access to citizens' histories by person_id.

    `jobcenters`, where given, is the set of jobcentres the caller may see (None: all)."""

    @abstractmethod
    def history(self, person_id: str, jobcenters: Collection[str] | None = None) -> dict[str, pd.DataFrame]:
        """One person's persons (one row), measurements and activities tables; CitizenNotFound otherwise."""

    @abstractmethod
    def listing(self, limit: int = 200, jobcenters: Collection[str] | None = None) -> list[dict]:
        """Up to `limit` citizens, by person_id: person_id, jobcenter, the number of measurement
        occasions and the date of the last one; each person once."""

    def body(self, person_id: str, jobcenters: Collection[str] | None = None) -> dict:
        """One person's history as a POST /v1/score body (as_of left to the service's default)."""
        return citizen_body(self.history(person_id, jobcenters), person_id)

    def close(self) -> None:
        """Release connections or cached tables."""


def _day(value) -> str | None:
    return None if pd.isna(value) else str(pd.Timestamp(value).date())


def _text(value) -> str | None:
    return None if pd.isna(value) else str(value)


def citizen_body(tables: dict[str, pd.DataFrame], person_id: str) -> dict:
    """One citizen's rows of the contract tables as a POST /v1/score body.

    Rows are put in one order (date, respondent, then the rest) whatever order the source kept
    them in, so every source gives the same body for the same citizen."""
    persons = tables["persons"]
    person = persons[persons["person_id"] == person_id]
    if person.empty:
        raise CitizenNotFound(person_id)
    p = person.iloc[0]
    measurements = tables["measurements"]
    measurements = measurements[measurements["person_id"] == person_id]
    measurements = measurements.assign(_day=pd.to_datetime(measurements["measured_at"]),
                                       _cw=measurements["caseworker_id"].astype("string").fillna(""))
    measurements = measurements.sort_values(["_day", "respondent", "_cw"], kind="stable")
    activities = tables.get("activities", pd.DataFrame(columns=ACTIVITY_COLUMNS))
    activities = activities[activities["person_id"] == person_id]
    activities = activities.assign(_start=pd.to_datetime(activities["start"]),
                                   _end=pd.to_datetime(activities["end"]))
    activities = activities.sort_values(["_start", "kind", "_end"], kind="stable", na_position="last")
    keys = [c for c in measurements.columns if c not in MEASUREMENT_BASE_COLUMNS and not c.startswith("_")]
    return {
        "person": {"person_id": person_id, "jobcenter": p["jobcenter"], "birth_year": int(p["birth_year"]),
                   "gender": p["gender"], "origin": p["origin"], "benefit_group": p["benefit_group"],
                   "enrolled_on": _day(p["enrolled_on"])},
        "measurements": [{"measured_at": _day(r["measured_at"]), "respondent": r["respondent"],
                          "caseworker_id": _text(r["caseworker_id"]),
                          "values": {k: None if pd.isna(r[k]) else int(r[k]) for k in keys}}
                         for _, r in measurements.iterrows()],
        "activities": [{"kind": r["kind"], "start": _day(r["start"]), "end": _day(r["end"])}
                       for _, r in activities.iterrows()],
        "as_of": None,
    }


def _listing_rows(persons: pd.DataFrame, occasions: pd.DataFrame, limit: int) -> list[dict]:
    """persons (person_id, jobcenter) and occasions (person_id, measurements, last_measured_at) -> rows."""
    persons = persons.drop_duplicates("person_id").sort_values("person_id").head(limit)
    occasions = occasions.set_index("person_id")
    rows = []
    for person_id, jobcenter in zip(persons["person_id"], persons["jobcenter"]):
        count = int(occasions["measurements"].get(person_id, 0))
        last = occasions["last_measured_at"].get(person_id) if count else None
        rows.append({"person_id": person_id, "jobcenter": jobcenter, "measurements": count,
                     "last_measured_at": _day(last) if last is not None else None})
    return rows


class TableCitizenSource(CitizenSource):
    """The embedded default: the contract tables in a folder (Parquet or CSV), read once on first use."""

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder else None
        self._tables: dict[str, pd.DataFrame] | None = None
        self._rows: dict[str, dict] = {}
        self._lock = threading.Lock()

    def _load(self) -> dict[str, pd.DataFrame]:
        with self._lock:  # routes run in a thread pool: the first requests must not all read the files
            if self._tables is None:
                from features.tables import read_tables
                if self.folder is None or not self.folder.is_dir():
                    raise CitizenSourceUnavailable(f"no citizen tables at {self.folder} (bip simulate writes some)")
                try:
                    tables = read_tables(self.folder, required=("persons", "measurements"))
                except (FileNotFoundError, ValueError) as error:  # missing, or files that cannot be read as tables
                    raise CitizenSourceUnavailable(str(error)) from error
                tables = {name: tables.get(name, pd.DataFrame(columns=ACTIVITY_COLUMNS)) for name in HISTORY_TABLES}
                # row positions per person, so one history is a lookup rather than a scan
                self._rows = {name: table.groupby("person_id", sort=False).indices for name, table in tables.items()}
                self._tables = tables
            return self._tables

    def history(self, person_id, jobcenters=None):
        tables = self._load()
        found = self._rows["persons"].get(person_id)
        if found is None:
            raise CitizenNotFound(person_id)
        person = tables["persons"].iloc[found[:1]]
        if jobcenters is not None and person["jobcenter"].iloc[0] not in jobcenters:
            raise CitizenNotFound(person_id)
        history = {"persons": person}
        for name in ("measurements", "activities"):
            rows = self._rows[name].get(person_id, [])
            history[name] = tables[name].iloc[rows]
        return history

    def listing(self, limit=200, jobcenters=None):
        tables = self._load()
        persons = tables["persons"][["person_id", "jobcenter"]]
        if jobcenters is not None:
            persons = persons[persons["jobcenter"].isin(list(jobcenters))]
        measured = pd.to_datetime(tables["measurements"]["measured_at"])
        occasions = (tables["measurements"].assign(_day=measured).groupby("person_id")["_day"]
                     .agg(measurements="nunique", last_measured_at="max").reset_index())
        return _listing_rows(persons, occasions, limit)

    def close(self):
        with self._lock:
            self._tables, self._rows = None, {}


# ---------------------------------------------------------------- the SQL tables (the data contract)

def contract_metadata(schema: IndicatorSchema | None = None) -> sa.MetaData:
    """The contract tables as SQL tables: persons, measurements (one column per indicator of
    `schema`), activities and outcomes, with the keys and indexes a lookup by person_id needs."""
    schema = schema or load_schema()
    metadata = sa.MetaData()
    person_id = lambda: sa.Column("person_id", sa.String(64), sa.ForeignKey("persons.person_id"),  # noqa: E731
                                  nullable=False, index=True)
    sa.Table("persons", metadata,
             sa.Column("person_id", sa.String(64), primary_key=True),
             sa.Column("jobcenter", sa.String(200), nullable=False, index=True),
             sa.Column("birth_year", sa.Integer, nullable=False),
             sa.Column("gender", sa.String(200), nullable=False),
             sa.Column("origin", sa.String(200), nullable=False),
             sa.Column("benefit_group", sa.String(200), nullable=False),
             sa.Column("enrolled_on", sa.Date, nullable=False))
    sa.Table("measurements", metadata,
             person_id(),
             sa.Column("measured_at", sa.Date, nullable=False),
             sa.Column("respondent", sa.String(20), nullable=False),
             sa.Column("caseworker_id", sa.String(64)),
             *[sa.Column(key, sa.SmallInteger) for key in schema.keys])
    sa.Table("activities", metadata,
             person_id(),
             sa.Column("kind", sa.String(200), nullable=False),
             sa.Column("start", sa.Date, nullable=False),
             sa.Column("end", sa.Date))
    sa.Table("outcomes", metadata,
             person_id(),
             sa.Column("month", sa.Date, nullable=False),
             sa.Column("status", sa.String(20), nullable=False))
    return metadata


def _columns(schema: IndicatorSchema) -> dict[str, list[str]]:
    return {"persons": PERSON_COLUMNS, "measurements": MEASUREMENT_BASE_COLUMNS + schema.keys,
            "activities": ACTIVITY_COLUMNS, "outcomes": OUTCOME_COLUMNS}


def _engine(url: str, read_only: bool) -> sa.Engine:
    options = {}
    if read_only and url.startswith("postgresql"):
        # the server refuses any write in these sessions, whatever a bug in the service might try
        options["connect_args"] = {"options": "-c default_transaction_read_only=on"}
    return sa.create_engine(url, pool_pre_ping=True, **options)


class SqlCitizenSource(CitizenSource):
    """The contract tables in a SQL database (PostgreSQL through psycopg: postgresql+psycopg://...)."""

    def __init__(self, url: str, schema: IndicatorSchema | None = None):
        self.schema = schema or load_schema()
        self.engine = _engine(url, read_only=True)
        self.tables = contract_metadata(self.schema).tables

    def _read(self, connection, query) -> pd.DataFrame:
        try:
            result = connection.execute(query)
        except sa.exc.OperationalError as error:  # names the server, never a password
            raise CitizenSourceUnavailable(f"citizen database {self.engine.url!r} cannot be read: "
                                           f"{type(error.orig).__name__}") from error
        return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))

    def _connect(self):
        try:
            return self.engine.connect()
        except sa.exc.OperationalError as error:
            raise CitizenSourceUnavailable(f"citizen database {self.engine.url!r} cannot be reached: "
                                           f"{type(error.orig).__name__}") from error

    def history(self, person_id, jobcenters=None):
        persons, measurements, activities = (self.tables[name] for name in HISTORY_TABLES)
        query = sa.select(persons).where(persons.c.person_id == person_id)
        if jobcenters is not None:
            query = query.where(persons.c.jobcenter.in_(list(jobcenters)))
        with self._connect() as connection:
            person = self._read(connection, query)
            if person.empty:
                raise CitizenNotFound(person_id)
            return {"persons": person,
                    "measurements": self._read(connection, sa.select(measurements)
                                               .where(measurements.c.person_id == person_id)),
                    "activities": self._read(connection, sa.select(activities)
                                             .where(activities.c.person_id == person_id))}

    def listing(self, limit=200, jobcenters=None):
        persons, measurements = self.tables["persons"], self.tables["measurements"]
        chosen = sa.select(persons.c.person_id, persons.c.jobcenter)
        if jobcenters is not None:
            chosen = chosen.where(persons.c.jobcenter.in_(list(jobcenters)))
        chosen = chosen.order_by(persons.c.person_id).limit(limit).subquery()
        occasions = (sa.select(measurements.c.person_id,
                               sa.func.count(sa.distinct(measurements.c.measured_at)).label("measurements"),
                               sa.func.max(measurements.c.measured_at).label("last_measured_at"))
                     .where(measurements.c.person_id.in_(sa.select(chosen.c.person_id)))
                     .group_by(measurements.c.person_id))
        with self._connect() as connection:
            people = self._read(connection, sa.select(chosen))
            counts = self._read(connection, occasions)
        return _listing_rows(people, counts, limit)

    def close(self):
        self.engine.dispose()


def open_source(location: str | Path | None, schema: IndicatorSchema | None = None) -> CitizenSource:
    """The source a setting names: a database URL (scheme://...) or a folder of Parquet/CSV tables."""
    if location is not None and "://" in str(location):
        return SqlCitizenSource(str(location), schema)
    return TableCitizenSource(location)


# ---------------------------------------------------------------- writing tables into a database

def load_tables(tables: dict[str, pd.DataFrame], url: str, schema: IndicatorSchema | None = None,
                replace: bool = False, chunk_rows: int = 20_000) -> dict[str, int]:
    """Write contract tables (validated by the caller) into the database at `url`; rows per table.

    Creates the tables if missing. With `replace`, existing contract tables are dropped first;
    without it, a database that already holds citizens is refused rather than mixed with them."""
    schema = schema or load_schema()
    metadata = contract_metadata(schema)
    columns = _columns(schema)
    engine = _engine(url, read_only=False)
    written = {}
    try:
        with engine.begin() as connection:
            if replace:
                metadata.drop_all(connection)
            metadata.create_all(connection)
            held = connection.execute(sa.select(sa.func.count()).select_from(metadata.tables["persons"])).scalar()
            if held:
                raise ValueError(f"the database already holds {held} persons; pass --replace to overwrite them")
            for name in TABLES:  # persons first: the others refer to them
                if name not in tables:
                    continue
                frame = tables[name][columns[name]]
                table = metadata.tables[name]
                for rows in _records(frame, table, chunk_rows):
                    connection.execute(table.insert(), rows)
                written[name] = len(frame)
    finally:
        engine.dispose()
    return written


def _records(frame: pd.DataFrame, table: sa.Table, chunk_rows: int) -> Iterable[list[dict]]:
    """Rows as plain Python values of the SQL column types (dates as dates, missing as None), in chunks."""
    plain = {}
    for column in frame.columns:
        values = frame[column]
        kind = table.c[column].type
        if isinstance(kind, sa.Date):  # Parquet gives timestamps, CSV ISO text (checked by validation)
            values = pd.to_datetime(values, format="ISO8601") if values.dtype == object or \
                pd.api.types.is_string_dtype(values) else values
            plain[column] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in values]
        elif isinstance(kind, sa.Integer):
            plain[column] = [None if pd.isna(v) else int(v) for v in values]
        else:
            plain[column] = [None if pd.isna(v) else str(v) for v in values]
    records = [dict(zip(plain, row)) for row in zip(*plain.values())]
    for start in range(0, len(records), chunk_rows):
        yield records[start:start + chunk_rows]
