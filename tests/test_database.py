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

from cli.app import app
from bip.config import Settings
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


def test_unreachable_database_is_unavailable_and_keeps_the_password_out(tmp_path, small_cohort_dir):
    with socket_port() as port:  # a port nothing listens on
        url = f"postgresql+psycopg://reader:s3cret-pw@127.0.0.1:{port}/citizens"
    source = open_source(url)
    assert isinstance(source, SqlCitizenSource)
    with pytest.raises(CitizenSourceUnavailable) as error:
        source.body("anyone")
    assert "s3cret-pw" not in str(error.value) and "127.0.0.1" in str(error.value)
    for target in (url, "nosuch://somewhere"):
        refused = load(small_cohort_dir, target)
        assert refused.exit_code == 2 and "s3cret-pw" not in refused.output and "Traceback" not in refused.output
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


# ---------------------------------------------------------------- the routes: GET /v1/citizens/...

def service(tmp_path, citizen_source):
    """The app over `citizen_source`, with a bound and an unbound caseworker key and an evaluator key."""
    from fastapi.testclient import TestClient

    from serving.keys import add_key
    from serving.main import create_app
    settings = Settings(keys_file=tmp_path / "keys.json", audit_log=tmp_path / "audit.jsonl",
                        audit_salt_file=tmp_path / "salt", jobs_dir=tmp_path / "jobs", reload_interval_s=0,
                        citizen_source=str(citizen_source))
    keys = {"caseworker": add_key(settings.keys_file, "caseworker")[1],
            "aarhus": add_key(settings.keys_file, "caseworker", ["Aarhus"])[1],
            "evaluator": add_key(settings.keys_file, "evaluator")[1]}
    return TestClient(create_app(settings), raise_server_exceptions=False), {k: {"X-API-Key": v} for k, v in keys.items()}


def scores_counted(client) -> float:
    """bip_scores_total summed over bands, from GET /metrics."""
    lines = client.get("/metrics").text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("bip_scores_total{"))


def test_citizen_score_route_answers_as_post_score_does(citizens_url, small_tables, small_cohort_dir,
                                                         serving_store, tmp_path):
    client, keys = service(tmp_path, citizens_url)
    with client:
        for person_id in sample_people(small_tables, 4):
            before = scores_counted(client)
            stored = client.get(f"/v1/citizens/{person_id}/score", headers=keys["caseworker"])
            assert scores_counted(client) == before + 1  # counted in bip_scores_total as POST /v1/score is
            posted = client.post("/v1/score", json=TableCitizenSource(small_cohort_dir).body(person_id),
                                 headers=keys["caseworker"])
            assert stored.status_code == 200 and stored.json() == posted.json()
        first = sample_people(small_tables, 2)[0]
        as_of = small_tables["measurements"].loc[small_tables["measurements"]["person_id"] == first, "measured_at"].min()
        earlier = client.get(f"/v1/citizens/{first}/score", params={"as_of": str(as_of.date())},
                             headers=keys["caseworker"]).json()
        assert earlier["as_of"] == str(as_of.date()) and earlier["change"]["previous_as_of"] is None
        history = client.get(f"/v1/citizens/{first}", headers=keys["caseworker"]).json()
        assert history == TableCitizenSource(small_cohort_dir).body(first)
        assert client.get(f"/v1/citizens/{first}/score", headers=keys["evaluator"]).status_code == 403
        assert client.get("/v1/citizens/..%2f..%2fetc/score", headers=keys["caseworker"]).status_code in (404, 422)
        assert client.get(f"/v1/citizens/{'x' * 65}/score", headers=keys["caseworker"]).status_code == 422


def test_a_key_bound_to_a_jobcentre_sees_only_its_citizens(citizens_url, small_tables, serving_store, tmp_path):
    client, keys = service(tmp_path, citizens_url)
    persons = small_tables["persons"]
    inside = persons.loc[persons["jobcenter"] == "Aarhus", "person_id"].iloc[0]
    outside = persons.loc[persons["jobcenter"] != "Aarhus", "person_id"].iloc[0]
    with client:
        assert client.get(f"/v1/citizens/{inside}/score", headers=keys["aarhus"]).status_code == 200
        other = client.get(f"/v1/citizens/{outside}/score", headers=keys["aarhus"])
        unknown = client.get("/v1/citizens/no-such-person/score", headers=keys["aarhus"])
        assert other.status_code == unknown.status_code == 404 and other.json() == unknown.json()
        assert client.get(f"/v1/citizens/{outside}", headers=keys["aarhus"]).json() == unknown.json()
        assert client.get(f"/v1/citizens/{outside}/score", headers=keys["caseworker"]).status_code == 200
        listed = client.get("/v1/citizens", params={"limit": 10_000}, headers=keys["aarhus"]).json()["citizens"]
        assert {c["jobcenter"] for c in listed} == {"Aarhus"}
        assert len(listed) == min((persons["jobcenter"] == "Aarhus").sum(), Settings().citizen_listing)
        demo = client.get("/v1/demo/citizens", headers=keys["aarhus"]).json()["citizens"]
        assert {c["jobcenter"] for c in demo} == {"Aarhus"}


def test_a_stored_history_that_breaks_the_contract_is_a_422_naming_the_field(small_cohort_dir, small_tables,
                                                                           serving_store, tmp_path, schema):
    from features.sources import load_tables
    url = f"sqlite:///{tmp_path / 'citizens.db'}"
    load_tables(small_tables, url, schema)
    person = sample_people(small_tables, 2)[0]
    key = schema.keys[0]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE measurements SET {key} = 9 WHERE person_id = :p"), {"p": person})
    engine.dispose()
    client, keys = service(tmp_path, url)
    with client:
        answer = client.get(f"/v1/citizens/{person}/score", headers=keys["caseworker"])
        assert answer.status_code == 422
        fields = {e["field"] for e in answer.json()["errors"]}
        assert any(f.endswith(f".values.{key}") for f in fields) and {e["value"] for e in answer.json()["errors"]} == {9}


def test_an_unreachable_citizen_database_is_a_503(serving_store, tmp_path):
    with socket_port() as port:
        url = f"postgresql+psycopg://reader:s3cret-pw@127.0.0.1:{port}/citizens"
    client, keys = service(tmp_path, url)
    with client:
        answer = client.get("/v1/citizens/anyone/score", headers=keys["caseworker"])
        assert answer.status_code == 503 and "s3cret" not in answer.text
        assert client.get("/v1/citizens", headers=keys["caseworker"]).status_code == 503
