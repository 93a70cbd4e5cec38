"""Issue 11: one test per defect found by attacking the service and feeding it jobcentre exports.
Each test failed on the code before the fix."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat

import pandas as pd
import pytest

from features.schema import load_schema
from features.tables import FileFormat, read_table, read_tables, write_csv
from features.validation import ValidationError, find_problems

TODAY = pd.Timestamp("2026-11-27")


def _persons(**columns) -> pd.DataFrame:
    base = {"person_id": ["p1", "p2", "p3"], "jobcenter": ["Faxe", "Sønderborg", "Aarhus"],
            "birth_year": [1980, 1975, 1990], "gender": ["female", "male", "female"],
            "origin": ["danish"] * 3, "benefit_group": ["aktivitetsparat_kontanthjaelp"] * 3,
            "enrolled_on": ["2014-05-12", "2014-05-31", "2015-01-02"]}
    return pd.DataFrame({**base, **columns})


def _folder(tmp_path, small_cohort_dir, persons_csv: bytes):
    """A cohort folder whose persons table is the given CSV bytes (the rest from the simulator)."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("measurements", "activities", "outcomes"):
        shutil.copy(small_cohort_dir / f"{name}.parquet", folder)
    (folder / "persons.csv").write_bytes(persons_csv)
    return folder


def _problems(folder, **declared):
    fmt = FileFormat.declared(**declared) if declared else None
    tables = read_tables(folder, fmt=fmt)
    return find_problems({"persons": tables["persons"]}, load_schema(), TODAY)


# --- silent misreading of files

def test_day_first_and_month_first_dates_are_not_guessed_per_cell(tmp_path, small_cohort_dir):
    """Before: 12-05-2014 was read as 5 December and 31-05-2014 as 31 May (pandas guessing each cell on its own)."""
    text = _persons(enrolled_on=["12-05-2014", "31-05-2014", "02-01-2015"]).to_csv(index=False)
    folder = _folder(tmp_path, small_cohort_dir, text.encode())
    found = [p for p in _problems(folder) if p.column == "enrolled_on"]
    assert [(p.row, p.value) for p in found] == [(2, "12-05-2014"), (3, "31-05-2014"), (4, "02-01-2015")]
    assert "ISO 8601" in found[0].allowed and "declared" in found[0].allowed
    persons = read_tables(folder, fmt=FileFormat.declared(date_format="dd-mm-yyyy"))["persons"]
    assert list(persons["enrolled_on"].dt.strftime("%Y-%m-%d")) == ["2014-05-12", "2014-05-31", "2015-01-02"]


def test_semicolon_file_says_what_it_found(tmp_path, small_cohort_dir):
    """Before: 7 'missing column' lines and no hint about the separator."""
    folder = _folder(tmp_path, small_cohort_dir, _persons().to_csv(index=False, sep=";").encode())
    with pytest.raises(ValidationError) as error:
        read_tables(folder)
    assert "looks `;`-separated" in str(error.value) and "declare sep" in str(error.value)
    assert _problems(folder, sep=";") == []


def test_latin1_file_is_refused_with_the_encoding_to_declare(tmp_path, small_cohort_dir):
    """Before: a UnicodeDecodeError traceback from the CLI."""
    from typer.testing import CliRunner

    from cli.app import app
    folder = _folder(tmp_path, small_cohort_dir, _persons().to_csv(index=False).encode("cp1252"))
    result = CliRunner().invoke(app, ["train", "--data", str(folder)])
    assert result.exit_code == 2, result.output
    assert "cp1252" in result.output and "Traceback" not in result.output
    assert _problems(folder, encoding="cp1252") == []
    persons = read_tables(folder, fmt=FileFormat.declared(encoding="cp1252"))["persons"]
    assert persons.loc[1, "jobcenter"] == "Sønderborg"


def test_utf8_with_bom_is_read(tmp_path, small_cohort_dir):
    folder = _folder(tmp_path, small_cohort_dir, b"\xef\xbb\xbf" + _persons().to_csv(index=False).encode())
    assert _problems(folder) == []


def test_row_numbers_are_file_lines(tmp_path, small_cohort_dir):
    """Before: rows counted from 0 (row 5 was line 7 of the file)."""
    frame = _persons(birth_year=["1980", "1975", "1850"])
    text = frame.to_csv(index=False).replace("\n", "\n\n", 1)  # a blank line after the header
    folder = _folder(tmp_path, small_cohort_dir, text.encode())
    [problem] = _problems(folder)
    assert (problem.row, problem.value, problem.file) == (5, 1850, "persons.csv")
    assert str(problem).startswith("persons.csv line 5")


def test_a_column_outside_the_contract_is_refused(tmp_path, small_cohort_dir):
    """Before: a first-name column passed silently (privacy)."""
    folder = _folder(tmp_path, small_cohort_dir, _persons(first_name=["Anna", "Bo", "Eva"]).to_csv(index=False).encode())
    [problem] = _problems(folder)
    assert problem.column == "first_name" and "personal data" in problem.allowed
    tables = read_tables(folder)
    assert find_problems({"persons": tables["persons"]}, load_schema(), TODAY,
                         extra_columns={"persons": ["first_name"]}) == []


def test_booleans_and_text_are_not_ratings(tables, schema):
    """Before: a boolean rating column was read as 1/0 and text '3' as 3."""
    m = tables["measurements"]
    m["job_search"] = m["job_search"].astype(object)
    m.loc[0, "job_search"] = True
    m.loc[1, "job_search"] = "3"
    m.loc[2, "job_search"] = float("inf")
    found = [(p.row, p.value) for p in find_problems(tables, schema, TODAY) if p.column == "job_search"]
    assert found == [(0, True), (1, "3"), (2, "inf")]
    json.dumps([p.to_dict() for p in find_problems(tables, schema, TODAY)], allow_nan=False)


def test_implausible_dates_and_birth_years_are_refused(tables, schema):
    """Before: 0001-01-01 and a birth year of 2024 passed."""
    tables["persons"].loc[0, "enrolled_on"] = pd.Timestamp("0001-01-01")
    tables["persons"].loc[1, "birth_year"] = 2024
    found = {(p.column, p.row) for p in find_problems(tables, schema, TODAY)}
    assert ("enrolled_on", 0) in found and ("birth_year", 1) in found


def test_long_text_is_refused_and_not_echoed(tables, schema):
    """Before: a 50 MB jobcenter string was accepted (and echoed back whole)."""
    tables["persons"]["jobcenter"] = tables["persons"]["jobcenter"].astype(object)
    tables["persons"].loc[0, "jobcenter"] = "x" * 5_000_000
    [problem] = [p for p in find_problems(tables, schema, TODAY) if p.column == "jobcenter"]
    assert problem.row == 0 and len(problem.value) < 100 and "5000000 characters" in problem.value


def test_parquet_rows_count_from_one(small_cohort_dir):
    frame = pd.read_parquet(small_cohort_dir / "persons.parquet")
    frame.loc[3, "gender"] = "x"
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    read = read_table(buffer.getvalue(), "persons", filename="persons.parquet")
    [problem] = find_problems({"persons": read}, load_schema(), TODAY)
    assert (problem.row, problem.file) == (4, "persons.parquet") and "row 4" in str(problem)


# --- output

def test_csv_cells_that_are_formulas_are_neutralised():
    """Before: =HYPERLINK(...) and +cmd|... went out as they came in."""
    frame = pd.DataFrame({"person_id": ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3",
                                        "\tx", "say \"hi\", then go"], "probability": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5]})
    text = write_csv(frame)
    back = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert [v[0] for v in back["person_id"]][:5] == ["'"] * 5
    assert back["person_id"].iloc[5] == 'say "hi", then go'      # RFC 4180: quotes doubled, not \"
    assert '"say ""hi"", then go"' in text and "\r\n" in text
    assert back["probability"].iloc[0] == -0.5                    # numbers stay numbers


# --- keys and audit

def test_a_broken_keys_file_gives_no_500(tmp_path, caplog):
    """Before: a truncated keys file made every keyed request raise (500)."""
    from serving.keys import KeyFileError, KeyStore, add_key
    path = tmp_path / "keys.json"
    _, key = add_key(path, "caseworker")
    store = KeyStore(path)
    assert store.lookup(key).role == "caseworker"
    path.write_text(path.read_text()[:40])          # truncated while the service runs
    assert store.lookup(key) is None and "not valid" in caplog.text
    with pytest.raises(KeyFileError, match="not valid JSON"):
        KeyStore(path)                              # and a start refuses with the reason


def test_keys_can_be_listed_and_revoked(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli.app import app
    from serving.keys import KeyStore, add_key
    path = tmp_path / "keys.json"
    monkeypatch.setenv("BIP_KEYS_FILE", str(path))
    key_id, key = add_key(path, "evaluator")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    listed = CliRunner().invoke(app, ["keys", "list"])
    assert key_id in listed.output and "evaluator" in listed.output and key not in listed.output
    store = KeyStore(path)
    assert CliRunner().invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    assert store.lookup(key) is None


def test_audit_file_is_private(tmp_path):
    """Before: the audit log was created 0644."""
    from serving.audit import AuditLog
    path = tmp_path / "audit.jsonl"
    path.touch(mode=0o644)
    AuditLog(path, b"salt").write(key_id="k", role="admin", route="GET /v1/model", person_ids=[],
                                  model_version="1", status=200, latency_ms=1.0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# --- crash leftovers

def test_training_refuses_truth_of_other_tables(tmp_path, small_cohort_dir):
    """Before: tables beside a stale truth trained with exit 0 and the oracle rows silently gone."""
    from features.tables import load_and_validate
    folder = tmp_path / "data"
    shutil.copytree(small_cohort_dir, folder)
    load_and_validate(folder)
    persons = pd.read_parquet(folder / "persons.parquet")
    persons.iloc[:-1].to_parquet(folder / "persons.parquet", index=False)  # another simulation's tables
    with pytest.raises(ValidationError, match="tables changed since the truth was written"):
        load_and_validate(folder)


def test_a_killed_simulation_leaves_the_folder_as_it_was(tmp_path, small_cohort_dir, monkeypatch):
    """Before: a simulation killed before its truth left new tables beside the old truth."""
    import simulation.simulate as sim
    folder = tmp_path / "data"
    shutil.copytree(small_cohort_dir, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim, "truth_table", killed)
    with pytest.raises(KeyboardInterrupt):
        sim.simulate(persons=30, seed=3, out=folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no temporary folder left behind


def test_train_marks_its_runs_failed_on_sigterm(tmp_path, monkeypatch):
    """Before: a killed `bip train` left its parent run RUNNING."""
    import mlflow

    from training.cli import Interrupted, runs_fail_on_interrupt
    # mlflow.set_tracking_uri also rewrites MLFLOW_TRACKING_URI: keep both to put back
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", os.environ.get("MLFLOW_TRACKING_URI", previous[0]))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = mlflow.create_experiment("interrupted")  # not the experiment another test left active
    try:
        with pytest.raises(Interrupted):
            with runs_fail_on_interrupt():
                parent = mlflow.start_run(experiment_id=experiment)
                child = mlflow.start_run(nested=True)
                os.kill(os.getpid(), signal.SIGTERM)
        client = mlflow.MlflowClient()
        assert [client.get_run(r.info.run_id).info.status for r in (parent, child)] == ["FAILED", "FAILED"]
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


# --- the service: access, input, headers, docs

from fastapi.testclient import TestClient  # noqa: E402

from bip.config import Settings  # noqa: E402


@pytest.fixture(scope="module")
def service(tmp_path_factory, serving_store, small_cohort_dir):
    """A service over the trained store; no job processes start (job_workers=0), so fuzzed
    submissions queue and then get 429."""
    from serving.keys import add_key
    from serving.main import create_app
    folder = tmp_path_factory.mktemp("hardened")
    settings = Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl",
                        audit_salt_file=folder / "salt", jobs_dir=folder / "jobs", reload_interval_s=0,
                        job_workers=0, job_queue=2, failed_keys_per_address=10_000, failed_keys_per_key=10_000,
                        citizen_source=str(small_cohort_dir))
    keys = {role: add_key(settings.keys_file, role)[1] for role in ("caseworker", "evaluator", "admin")}
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client, keys, settings


def _raw(client, key, text: str):
    return client.post("/v1/score", content=text.encode("utf-8", "surrogatepass"),
                       headers={"X-API-Key": key, "content-type": "application/json"})


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e309", "true", '"3"', "3.5"])
def test_non_finite_and_non_integer_ratings_are_422(service, small_tables, bad):
    """Before: NaN, Infinity or 1e309 as a rating or birth year gave 500 (the echo was not JSON)."""
    from features.sources import citizen_body
    app, client, keys, _ = service
    person = small_tables["measurements"]["person_id"].iloc[0]
    body = json.dumps(citizen_body(small_tables, person))
    rating = body.replace('"job_search": ', f'"job_search": {bad}, "_x": ', 1).replace(', "_x": ', ', "_ignored": ', 1)
    rating = json.loads(json.dumps(json.loads(body)))
    rating["measurements"][0]["values"]["job_search"] = "__BAD__"
    year = json.loads(body)
    year["person"]["birth_year"] = "__BAD__"
    for text in (json.dumps(rating).replace('"__BAD__"', bad), json.dumps(year).replace('"__BAD__"', bad)):
        answer = _raw(client, keys["caseworker"], text)
        assert answer.status_code == 422, answer.text
        json.loads(answer.text, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))


def test_lone_surrogate_is_422(service, small_tables):
    """Before: "\\ud800" in jobcenter gave 500."""
    from features.sources import citizen_body
    app, client, keys, _ = service
    body = citizen_body(small_tables, small_tables["persons"]["person_id"].iloc[0])
    body["person"]["jobcenter"] = "__S__"
    answer = _raw(client, keys["caseworker"], json.dumps(body).replace("__S__", "\\ud800"))
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "person.jobcenter"


def test_a_long_string_is_not_echoed(service, small_tables):
    from features.sources import citizen_body
    app, client, keys, _ = service
    body = citizen_body(small_tables, small_tables["persons"]["person_id"].iloc[0])
    body["person"]["jobcenter"] = "x" * 1_000_000
    answer = client.post("/v1/score", json=body, headers={"X-API-Key": keys["caseworker"]})
    assert answer.status_code == 422 and len(answer.content) < 2000


def test_evaluation_seed_out_of_range_is_422(service):
    """Before: seed=-1 or above 2**64 gave 500."""
    app, client, keys, _ = service
    for seed in ("-1", str(2**64 + 1)):
        answer = client.post("/v1/evaluations", headers={"X-API-Key": keys["evaluator"]},
                             data={"seed": seed, "treatment": "t", "outcome": "y"},
                             files={"cohort": ("c.csv", b"t,y\n1,0\n")})
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "seed"


def test_truncated_keys_file_gives_401_not_500(tmp_path):
    from serving.keys import add_key
    from serving.main import create_app
    settings = Settings(keys_file=tmp_path / "keys.json", audit_log=tmp_path / "audit.jsonl",
                        audit_salt_file=tmp_path / "salt", jobs_dir=tmp_path / "jobs", reload_interval_s=0)
    _, key = add_key(settings.keys_file, "admin")
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    settings.keys_file.write_text(settings.keys_file.read_text()[:30])
    assert client.get("/v1/model", headers={"X-API-Key": key}).status_code == 401


def _app(tmp_path, **limits):
    from serving.main import create_app
    settings = Settings(keys_file=tmp_path / "keys.json", audit_log=tmp_path / "audit.jsonl",
                        audit_salt_file=tmp_path / "salt", jobs_dir=tmp_path / "jobs", reload_interval_s=0,
                        audit_refused_interval_s=3600, **limits)
    return TestClient(create_app(settings), raise_server_exceptions=False), settings


def test_the_key_is_checked_before_the_body_is_read(tmp_path):
    """Before: unauthenticated 60 MB bodies were parsed before the key check."""
    import asyncio

    from serving.main import create_app
    settings = Settings(keys_file=tmp_path / "keys.json", audit_log=tmp_path / "audit.jsonl",
                        audit_salt_file=tmp_path / "salt", jobs_dir=tmp_path / "jobs", reload_interval_s=0)
    app, sent = create_app(settings), []

    async def receive():
        raise AssertionError("the body was read before the key was checked")

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/score", "raw_path": b"/v1/score", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"60000000")],
             "client": ("10.0.0.1", 1), "server": ("test", 80), "scheme": "http", "http_version": "1.1",
             "root_path": "", "app": app}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401


def test_a_chunked_body_over_the_limit_is_413_on_every_route(tmp_path):
    """Before: a body sent without Content-Length (chunked) over the limit was refused while the
    route read it, and FastAPI turned that into 400 "There was an error parsing the body"."""
    from serving.keys import add_key
    client, settings = _app(tmp_path, max_body_bytes=10_000)
    _, key = add_key(settings.keys_file, "admin")

    def chunks():  # a generator body: httpx sends it chunked, with no Content-Length
        for _ in range(30):
            yield b"x" * 1000

    for route, content_type in [("/v1/score", "application/json"),
                                ("/v2/models/bip-employment/infer", "application/json"),
                                ("/v1/cohorts/score", "multipart/form-data; boundary=x"),
                                ("/v1/evaluations", "multipart/form-data; boundary=x")]:
        answer = client.post(route, content=chunks(), headers={"X-API-Key": key, "content-type": content_type})
        assert answer.status_code == 413, (route, answer.status_code, answer.text)
        assert "BIP_MAX_BODY_BYTES" in answer.json()["detail"]
    lines = [json.loads(line) for line in settings.audit_log.read_text().splitlines()]
    assert [line["status"] for line in lines] == [413] * 4  # the audit sees the answer the client got


def test_failed_keys_are_rate_limited_per_address_and_per_key(tmp_path):
    """Before: 5,974 wrong keys per second and never a 429."""
    client, _ = _app(tmp_path, failed_keys_per_address=3, failed_keys_per_key=1000)
    codes = [client.get("/v1/model", headers={"X-API-Key": f"wrong{i}"}).status_code for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    assert int(client.get("/v1/model").headers["retry-after"]) > 0
    client, _ = _app(tmp_path / "per-key", failed_keys_per_address=1000, failed_keys_per_key=2)
    codes = [client.get("/v1/model", headers={"X-API-Key": f"bip_deadbeef_guess{i}"}).status_code for i in range(3)]
    assert codes == [401, 401, 429]
    assert client.get("/v1/model", headers={"X-API-Key": "bip_cafebabe_other"}).status_code == 401


def test_header_size_is_bounded(tmp_path):
    client, _ = _app(tmp_path)
    assert client.get("/health", headers={"X-Padding": "x" * 20_000}).status_code == 431


def test_a_caseworker_gets_403_not_400_on_a_broken_evaluator_upload(service):
    app, client, keys, _ = service
    answer = client.post("/v1/evaluations", headers={"X-API-Key": keys["caseworker"],
                                                     "content-type": "multipart/form-data; boundary=x"},
                         content=b"--x\r\nbroken")
    assert answer.status_code == 403


def test_audit_has_route_templates_and_unauthenticated_traffic_is_counted(tmp_path):
    """Before: raw ids in the audit route, and unauthenticated traffic wrote a line per request."""
    from serving.keys import add_key
    client, settings = _app(tmp_path, failed_keys_per_address=10_000)
    _, key = add_key(settings.keys_file, "caseworker")
    client.get("/v1/demo/citizens/<img src=x onerror=alert(1)>", headers={"X-API-Key": key})
    for _ in range(300):
        client.get("/v1/demo/citizens/someone")
    client.app.state.audit.flush_refused()
    lines = [json.loads(line) for line in settings.audit_log.read_text().splitlines()]
    assert "onerror" not in json.dumps(lines) and lines[0]["route"] == "GET /v1/demo/citizens/{person_id}"
    assert lines[1]["unauthenticated"] == {"GET /v1/demo/citizens/{person_id} 401": 300} and len(lines) == 2
    assert stat.S_IMODE(os.stat(settings.audit_log).st_mode) == 0o600


def test_security_headers_and_offline_docs(service):
    app, client, keys, _ = service
    page = client.get("/caseworker")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline' ;" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"
    api = client.get("/v1/model", headers={"X-API-Key": keys["caseworker"]})
    assert api.headers["cache-control"] == "no-store" and api.headers["x-frame-options"] == "DENY"
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower() and "<script>" not in docs
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/redoc.standalone.js", "/docs/init.js"):
        assert client.get(asset).status_code == 200
    assert "redoc.standalone.js" in client.get("/redoc").text
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["APIKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": spec["components"]["securitySchemes"]["APIKey"]["description"]}
    score = spec["paths"]["/v1/score"]["post"]
    assert score["security"] == [{"APIKey": []}] and {"401", "403", "413", "422", "429", "503"} <= set(score["responses"])


# --- schemathesis: every operation fuzzed for an admin and a caseworker key

import schemathesis  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)


def _fuzz(service, role: str) -> list[str]:
    """Every operation with a bounded number of generated requests (hypothesis, derandomized);
    the failures found, one line per operation."""
    from hypothesis import given
    app, client, keys, _ = service
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @FUZZ
        def run(case):
            case.call_and_validate(headers={"X-API-Key": keys[role]}, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as error:  # every operation tried; failures reported together
            failures.append(f"{operation.label}: {str(error)[:1500]}")
    return failures


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = hypothesis_settings(max_examples=12, deadline=None, derandomize=True, database=None,
                           suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("role", ["admin", "caseworker"])
def test_api_conforms_to_its_schema_under_fuzzing(service, role):
    """0 server errors and 0 schema mismatches: every answer's status and body are documented."""
    failures = _fuzz(service, role)
    assert not failures, "\n\n".join(failures)


def test_uploads_are_read_as_declared_and_refused_otherwise(service, small_tables):
    """The API reads uploads like the CLI: a Danish Excel export (';', cp1252, dd-mm-yyyy) is refused
    with what to declare, and scored when declared; problems name the file line."""
    app, client, keys, _ = service
    people = small_tables["persons"]["person_id"].iloc[:5]
    files = {}
    for name in ("persons", "measurements", "activities"):
        table = small_tables[name][small_tables[name]["person_id"].isin(people)].copy()
        for column in ("enrolled_on", "measured_at", "start", "end"):
            if column in table:
                table[column] = table[column].dt.strftime("%d-%m-%Y")
        files[name] = (f"{name}.csv", table.to_csv(index=False, sep=";").encode("cp1252"))
    headers = {"X-API-Key": keys["evaluator"]}
    refused = client.post("/v1/cohorts/score", headers=headers, files=files, data={"encoding": "cp1252"})
    assert refused.status_code == 422 and "looks `;`-separated" in refused.text
    undeclared_dates = client.post("/v1/cohorts/score", headers=headers, files=files,
                                   data={"encoding": "cp1252", "sep": ";"})
    assert undeclared_dates.status_code == 422
    assert undeclared_dates.json()["errors"][0]["field"] == "persons[2].enrolled_on"  # line 2: the first row
    scored = client.post("/v1/cohorts/score", headers=headers, files=files,
                         data={"encoding": "cp1252", "sep": ";", "date_format": "dd-mm-yyyy"})
    assert scored.status_code == 200, scored.text
    assert scored.json()["count"] == 5
    bad = client.post("/v1/cohorts/score", headers=headers, files=files, data={"date_format": "%Q"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "date_format"
