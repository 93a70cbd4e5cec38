"""Citizens from a database and a team MLflow server, on a real PostgreSQL started by the suite
(tests/conftest.py `postgres`): the SQL citizen source against the Parquet default, jobcentre
binding, `bip db load`, and train -> register -> promote -> serve through `mlflow server`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from bip.cli import app
from features.contract import TABLES
from features.sources import (
    CitizenNotFound,
    CitizenSourceUnavailable,
    SqlCitizenSource,
    TableCitizenSource,
    contract_metadata,
    open_source,
)

runner = CliRunner()


def load(data_dir, url, *extra):
    return runner.invoke(app, ["db", "load", "--data", str(data_dir), "--url", url, *extra])


@pytest.fixture(scope="module")
def citizens_url(postgres, small_cohort_dir):
    """The small cohort loaded into its own PostgreSQL database by `bip db load`."""
    url = postgres.create_database("citizens_test")
    result = load(small_cohort_dir, url)
    assert result.exit_code == 0, result.output
    return url


@pytest.fixture(scope="module")
def sources(citizens_url, small_cohort_dir):
    sql, files = SqlCitizenSource(citizens_url), TableCitizenSource(small_cohort_dir)
    yield {"postgresql": sql, "parquet": files}
    sql.close()


def sample_people(tables, n=12):
    """Persons with and without activities, from several jobcentres."""
    with_activities = tables["activities"]["person_id"].drop_duplicates().head(n // 2).tolist()
    others = tables["persons"]["person_id"][~tables["persons"]["person_id"].isin(with_activities)].head(n // 2)
    return with_activities + others.tolist()


def test_db_load_writes_the_contract_tables(citizens_url, small_tables, schema):
    engine = sa.create_engine(citizens_url)
    inspector = sa.inspect(engine)
    expected = contract_metadata(schema).tables
    with engine.connect() as connection:
        for name in TABLES:
            assert [c["name"] for c in inspector.get_columns(name)] == [c.name for c in expected[name].columns]
            count = connection.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar()
            assert count == len(small_tables[name]), name
    engine.dispose()


def test_postgres_and_parquet_give_identical_histories_and_scores(sources, small_tables, serving_store):
    from serving.citizen import score_citizen
    from serving.holder import ModelHolder
    from serving.schemas import ScoreRequest
    from bip.config import Settings

    holder = ModelHolder(Settings().model_uri)
    assert holder.load()[0], holder.last_error
    people = sample_people(small_tables)
    assert len(people) == 12
    for person_id in people:
        bodies = {name: source.body(person_id) for name, source in sources.items()}
        assert bodies["postgresql"] == bodies["parquet"], person_id
        assert len(bodies["parquet"]["measurements"]) == (small_tables["measurements"]["person_id"] == person_id).sum()
        scores = [score_citizen(holder.current.model, ScoreRequest.model_validate(body), date.today())
                  for body in bodies.values()]
        assert scores[0] == scores[1], person_id
        assert 0 < scores[0]["probability"] < 1


def test_listing_is_the_same_from_both_sources_and_names_each_person_once(sources, small_tables, tmp_path):
    listings = {name: source.listing(limit=50) for name, source in sources.items()}
    assert listings["postgresql"] == listings["parquet"]
    rows = listings["parquet"]
    assert len(rows) == 50 and set(rows[0]) == {"person_id", "jobcenter", "measurements", "last_measured_at"}
    assert [r["person_id"] for r in rows] == sorted(r["person_id"] for r in rows)
    first = rows[0]["person_id"]
    measured = small_tables["measurements"].loc[small_tables["measurements"]["person_id"] == first, "measured_at"]
    assert rows[0]["measurements"] == measured.nunique()
    assert rows[0]["last_measured_at"] == str(measured.max().date())
    # a persons file that repeats people (as an export may) still lists each person once
    for name in ("measurements", "activities"):
        small_tables[name].to_parquet(tmp_path / f"{name}.parquet")
    persons = small_tables["persons"]
    pd.concat([persons, persons.head(5)]).to_parquet(tmp_path / "persons.parquet")
    repeated = TableCitizenSource(tmp_path).listing(limit=len(persons) + 10)
    assert len(repeated) == len(persons) == len({r["person_id"] for r in repeated})


@pytest.mark.parametrize("kind", ["postgresql", "parquet"])
def test_jobcentre_binding_answers_like_an_unknown_person(sources, small_tables, kind):
    source = sources[kind]
    person = small_tables["persons"].iloc[0]
    home, elsewhere = person["jobcenter"], sorted(set(small_tables["persons"]["jobcenter"]) - {person["jobcenter"]})
    assert source.body(person["person_id"], jobcenters={home})["person"]["jobcenter"] == home
    with pytest.raises(CitizenNotFound) as outside:
        source.body(person["person_id"], jobcenters=set(elsewhere))
    with pytest.raises(CitizenNotFound) as unknown:
        source.body("no-such-person")
    assert str(outside.value) == str(unknown.value) and person["person_id"] not in str(outside.value)
    with pytest.raises(CitizenNotFound):
        source.body(person["person_id"], jobcenters=set())  # a key bound to no jobcentre sees no one
    listed = source.listing(limit=10_000, jobcenters={home, elsewhere[0]})
    assert {r["jobcenter"] for r in listed} == {home, elsewhere[0]}
    assert len(listed) == small_tables["persons"]["jobcenter"].isin([home, elsewhere[0]]).sum()


def test_sql_source_sessions_are_read_only(sources):
    engine = sources["postgresql"].engine
    with engine.connect() as connection:
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
            connection.execute(sa.text("DELETE FROM measurements"))


def test_db_load_refuses_a_filled_database_replaces_on_request_and_names_bad_cells(
        postgres, small_cohort_dir, small_tables, tmp_path):
    url = postgres.create_database("citizens_reload")
    assert load(small_cohort_dir, url).exit_code == 0
    again = load(small_cohort_dir, url)
    assert again.exit_code == 2 and "--replace" in again.output
    assert load(small_cohort_dir, url, "--replace").exit_code == 0
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM persons")).scalar() == len(small_tables["persons"])
    engine.dispose()
    for name, table in small_tables.items():
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    persons = small_tables["persons"].copy()
    persons["birth_year"] = persons["birth_year"].astype(object)
    persons.loc[3, "birth_year"] = "unknown"
    persons.to_csv(tmp_path / "persons.csv", index=False)
    bad = load(tmp_path, postgres.create_database("citizens_bad"))
    assert bad.exit_code == 2 and "birth_year" in bad.output and "Traceback" not in bad.output


def test_csv_tables_load_to_the_same_citizens(postgres, small_tables, tmp_path):
    """CSV exports (dates as text) give the same database content as the Parquet files."""
    for name, table in small_tables.items():
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    url = postgres.create_database("citizens_csv")
    result = load(tmp_path, url)
    assert result.exit_code == 0, result.output
    person = sample_people(small_tables, 2)[0]
    source = SqlCitizenSource(url)
    assert source.body(person) == TableCitizenSource(tmp_path).body(person)
    source.close()


def test_unreachable_database_is_unavailable_and_keeps_the_password_out(tmp_path):
    with socket_port() as port:  # a port nothing listens on
        source = open_source(f"postgresql+psycopg://reader:s3cret-pw@127.0.0.1:{port}/citizens")
    assert isinstance(source, SqlCitizenSource)
    with pytest.raises(CitizenSourceUnavailable) as error:
        source.body("anyone")
    assert "s3cret-pw" not in str(error.value) and "127.0.0.1" in str(error.value)
    with pytest.raises(CitizenSourceUnavailable, match="bip simulate"):
        open_source(tmp_path / "missing").listing()


def test_keys_bound_to_jobcentres(tmp_path, monkeypatch):
    from serving.keys import KeyStore
    monkeypatch.setenv("BIP_KEYS_FILE", str(tmp_path / "keys.json"))
    bound = runner.invoke(app, ["keys", "add", "--role", "caseworker", "--jobcenter", "Aarhus",
                                "--jobcenter", "Viborg"])
    free = runner.invoke(app, ["keys", "add", "--role", "caseworker"])
    assert bound.exit_code == 0 and free.exit_code == 0, bound.output + free.output
    store = KeyStore(tmp_path / "keys.json")
    assert store.lookup(bound.stdout.splitlines()[0]).jobcenters == frozenset({"Aarhus", "Viborg"})
    assert store.lookup(free.stdout.splitlines()[0]).jobcenters is None
    assert runner.invoke(app, ["keys", "add", "--role", "caseworker", "--jobcenter", " "]).exit_code == 2


# ---------------------------------------------------------------- a team MLflow server on PostgreSQL

class socket_port:
    """A free TCP port on 127.0.0.1 (closed again on exit, for the server to take)."""

    def __enter__(self) -> int:
        import socket
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        return self.socket.getsockname()[1]

    def __exit__(self, *exc):
        self.socket.close()


@pytest.fixture()
def mlflow_server(postgres, tmp_path):
    """`mlflow server` with its backend store in PostgreSQL and artifacts in a temporary folder."""
    import httpx
    store = postgres.create_database("mlflow_e2e")
    with socket_port() as port:
        pass
    log = open(tmp_path / "mlflow.log", "wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", store,
         "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # migrations on a fresh store take a while on a busy machine
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start:\n" + (tmp_path / "mlflow.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, store
    finally:
        import signal
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_train_register_promote_and_serve_through_mlflow_server_on_postgres(
        mlflow_server, small_cohort_dir, citizens_url, small_tables, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    from serving.citizen import score_citizen
    from serving.holder import ModelHolder
    from serving.schemas import ScoreRequest
    from bip.config import Settings
    from training.train import train

    url, store = mlflow_server
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    try:
        summary = train(small_cohort_dir, "xgboost", 12, register=True, seed=7)
        version = summary["registered_version"]
        assert version == "1"
        promoted = runner.invoke(app, ["promote", version])
        assert promoted.exit_code == 0, promoted.output
        settings = Settings()
        assert settings.tracking_uri == url
        holder = ModelHolder(settings.model_uri)
        loaded, message = holder.load()
        assert loaded, message
        assert holder.current.version == version and holder.current.alias == "champion"
        # the run, the version and its alias are rows in PostgreSQL, the model files in the artifact folder
        client = MlflowClient(url)
        run = client.get_run(holder.current.model.metadata["run_id"])
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        engine = sa.create_engine(store)
        with engine.connect() as connection:
            aliases = connection.execute(sa.text("SELECT alias, version FROM registered_model_aliases")).all()
        engine.dispose()
        assert [(a, str(v)) for a, v in aliases] == [("champion", version)]
        # and a citizen read from the PostgreSQL citizen source is scored by the served champion
        person = sample_people(small_tables, 2)[0]
        source = SqlCitizenSource(citizens_url)
        result = score_citizen(holder.current.model, ScoreRequest.model_validate(source.body(person)), date.today())
        source.close()
        explanation = result["explanation"]
        assert result["person_id"] == person and 0 < result["probability"] < 1
        assert explanation["base_value"] + sum(c["contribution"] for c in explanation["contributions"]) == \
            pytest.approx(explanation["log_odds"], abs=1e-9)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
