"""The service through the real ASGI app: routes, roles, errors, explanations, audit, reloads."""

import io
import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from serving.keys import add_key
from bip.config import Settings


def citizen_body(tables, person_id, as_of=None):
    """The person's history as a /v1/score body, cut at as_of when given."""
    from features.sources import citizen_body as body_of
    if as_of is not None:
        m = tables["measurements"]
        tables = {**tables, "measurements": m[(m["person_id"] != person_id) | (m["measured_at"] <= as_of)]}
    body = body_of(tables, person_id)
    body["as_of"] = None if as_of is None else str(as_of.date())
    return body


@pytest.fixture(scope="module")
def settings(tmp_path_factory, serving_store):
    folder = tmp_path_factory.mktemp("service")
    return Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl",
                    audit_salt_file=folder / "salt", jobs_dir=folder / "jobs", reload_interval_s=0)


@pytest.fixture(scope="module")
def keys(settings):
    return {role: add_key(settings.keys_file, role)[1] for role in ("caseworker", "evaluator", "admin")}


@pytest.fixture(scope="module")
def client(settings, keys):
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def h(keys, role):
    return {"X-API-Key": keys[role]}


@pytest.fixture(scope="module")
def body(small_tables):
    person = small_tables["measurements"]["person_id"].value_counts().index[0]
    return citizen_body(small_tables, person)


def test_health_ready_model(client, keys):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["model"]["version"] == "1"
    info = client.get("/v1/model", headers=h(keys, "caseworker")).json()
    assert info["name"] == "bip-employment" and info["alias"] == "champion" and info["trained_at"]
    assert len(info["indicator_schema"]["indicators"]) == 11 and "roc_auc" in info["metrics"]
    assert 0 < info["base_rate"] < 0.5  # the training examples' rate, for the caseworker page's comparison


def test_score_answers_with_an_exact_explanation(client, keys, body):
    response = client.post("/v1/score", json=body, headers=h(keys, "caseworker"))
    assert response.status_code == 200, response.text
    r = response.json()
    e = r["explanation"]
    assert e["unit"] == "log_odds"
    assert abs(e["base_value"] + sum(c["contribution"] for c in e["contributions"]) - e["log_odds"]) <= 1e-6
    assert r["probability"] == pytest.approx(1 / (1 + math.exp(-e["log_odds"])), abs=1e-12)
    assert r["interval"]["low"] <= r["probability"] <= r["interval"]["high"]
    groups = {c["group"]: c for c in e["contributions"]}
    assert {"caseworker_belief", "job_search", "measurement_history"} <= set(groups)
    assert groups["caseworker_belief"]["kind"] == "indicator" and groups["jobcenter"]["kind"] == "other"
    assert groups["caseworker_belief"]["label_da"] == "Sagsbehandlerens tro på job"
    assert "procentpoint" in groups["caseworker_belief"]["reason_da"]
    change = r["change"]
    assert change["previous_as_of"] < r["as_of"] and 0 < change["previous_probability"] < 1
    assert change["drivers"] and all(d["change"] != 0 for d in change["drivers"])
    assert r["model"] == {"name": "bip-employment", "version": "1", "alias": "champion"}


def test_additivity_and_agreement_with_offline_scoring_on_hundreds_of_citizens(client, keys, small_tables):
    from models.store import CHAMPION_URI, load_scoring_model
    model = load_scoring_model(CHAMPION_URI)
    occasions = small_tables["measurements"][["person_id", "measured_at"]].drop_duplicates()
    sample = occasions.sample(200, random_state=1)
    offline = model.score_frame(sample.rename(columns={"measured_at": "as_of"}), small_tables, explain=True)
    for (person, as_of), expected in zip(sample.itertuples(index=False), offline["probability"]):
        r = client.post("/v1/score", json=citizen_body(small_tables, person, as_of), headers=h(keys, "caseworker")).json()
        e = r["explanation"]
        assert abs(e["base_value"] + sum(c["contribution"] for c in e["contributions"]) - e["log_odds"]) <= 1e-6
        assert r["probability"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("route, method, role, expected", [
    ("/v1/score", "post", None, 401), ("/v1/score", "post", "wrong", 401),
    ("/v1/score", "post", "evaluator", 403), ("/v1/cohorts/score", "post", "caseworker", 403),
    ("/v1/admin/reload", "post", "caseworker", 403), ("/v1/admin/reload", "post", "evaluator", 403),
    ("/v1/model", "get", None, 401),
])
def test_roles(client, keys, body, route, method, role, expected):
    headers = {} if role is None else {"X-API-Key": keys.get(role, "bip_nope_nope")}
    response = getattr(client, method)(route, json=body, headers=headers) if method == "post" else client.get(route, headers=headers)
    assert response.status_code == expected


def _errors(response):
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert all({"field", "value", "allowed"} <= set(e) for e in errors)
    return {e["field"]: e for e in errors}


def test_bad_input_names_field_value_and_allowed(client, keys, body):
    bad = json.loads(json.dumps(body))
    bad["person"]["gender"] = "unknown"
    bad["measurements"][0]["values"]["job_search"] = 9
    bad["measurements"][0]["values"]["motivation"] = 3
    citizen_row = next(i for i, m in enumerate(bad["measurements"]) if m["respondent"] == "citizen")
    bad["measurements"][citizen_row]["values"]["caseworker_belief"] = 4
    response = client.post("/v1/score", json=bad, headers=h(keys, "caseworker"))
    errors = _errors(response)
    assert errors["person.gender"]["value"] == "unknown" and "female" in errors["person.gender"]["allowed"]
    bad["person"]["gender"] = "female"
    errors = _errors(client.post("/v1/score", json=bad, headers=h(keys, "caseworker")))
    assert errors["measurements[0].values.job_search"]["value"] == 9
    assert errors["measurements[0].values.job_search"]["allowed"] == "an integer from 1 to 5"
    assert "measurements.values.motivation" in errors
    assert f"measurements[{citizen_row}].values.caseworker_belief" in errors


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b.update(as_of="1999-01-01"), "as_of"),
    (lambda b: b.update(as_of="2999-01-01"), "as_of"),
    (lambda b: b["measurements"][0].update(measured_at="2999-01-01"), "measurements[0].measured_at"),
    (lambda b: b["activities"].append({"kind": "yoga", "start": "2014-01-01"}), "activities.0.kind"),
    (lambda b: b["activities"].append({"kind": "mentor", "start": "2014-05-01", "end": "2014-01-01"}), "activities[0].end"),
    (lambda b: b["person"].pop("birth_year"), "person.birth_year"),
    (lambda b: b.update(measurements=[]), "measurements"),
    (lambda b: b["measurements"][0].update(respondent="mentor"), "measurements.0.respondent"),
    (lambda b: b["measurements"][0]["values"].update(job_search="high"), "measurements.0.values.job_search.int"),
])
def test_hand_written_bad_bodies(client, keys, body, mutate, field):
    bad = json.loads(json.dumps(body))
    bad["activities"] = [] if "activities" in field else bad["activities"]
    mutate(bad)
    errors = _errors(client.post("/v1/score", json=bad, headers=h(keys, "caseworker")))
    assert any(f.startswith(field.split(".int")[0]) for f in errors), errors


def test_invalid_json_is_a_422(client, keys):
    response = client.post("/v1/score", content=b"{not json", headers={**h(keys, "caseworker"), "content-type": "application/json"})
    assert response.status_code == 422


def _mutations(body, rng):
    junk = [None, "", "x" * 300, -1, 0, 10**12, 3.7, True, [], {}, "2014-13-45", "9999-01-01", [1, 2], {"a": 1}]
    bad = json.loads(json.dumps(body))
    for _ in range(rng.integers(1, 4)):
        target, path = bad, []
        while isinstance(target, (dict, list)) and target and rng.random() < 0.75:
            key = rng.choice(list(target.keys())) if isinstance(target, dict) else int(rng.integers(len(target)))
            if not isinstance(target[key], (dict, list)):
                break
            target, path = target[key], path + [key]
        if isinstance(target, dict) and target:
            key = rng.choice(list(target.keys()))
            action = rng.integers(3)
            if action == 0:
                del target[key]
            elif action == 1:
                target[key] = junk[rng.integers(len(junk))]
            else:
                target[f"extra_{key}"] = junk[rng.integers(len(junk))]
        elif isinstance(target, list) and target:
            target[int(rng.integers(len(target)))] = junk[rng.integers(len(junk))]
    return bad


def test_generated_bad_bodies_never_crash_the_service(client, keys, body):
    rng = np.random.default_rng(2026)
    statuses = []
    for _ in range(300):
        response = client.post("/v1/score", json=_mutations(body, rng), headers=h(keys, "caseworker"))
        statuses.append(response.status_code)
        assert response.status_code in (200, 422), response.text
        if response.status_code == 422:
            assert response.json()["errors"]
    assert statuses.count(422) > 150


def test_too_large_a_body_is_413(settings, keys, body, serving_store):
    small = settings.model_copy(update={"max_body_bytes": 2000})
    with TestClient(create_app(small)) as client:
        response = client.post("/v1/score", json=body, headers=h(keys, "caseworker"))
        assert response.status_code == 413


def test_no_model_answers_503_with_a_reason(settings, keys, body):
    missing = settings.model_copy(update={"model_name": "no-such-model"})
    with TestClient(create_app(missing)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        # anyone may ask /ready: it says there is no model, not the registry's error
        assert ready.status_code == 503 and ready.json()["reason"] == "no model loaded"
        response = client.post("/v1/score", json=body, headers=h(keys, "caseworker"))
        assert response.status_code == 503 and "no-such-model" in response.json()["detail"]


def test_audit_has_pseudonyms_only(client, keys, body, settings):
    client.post("/v1/score", json=body, headers=h(keys, "caseworker"))
    lines = settings.audit_log.read_text().splitlines()
    entry = json.loads(lines[-1])
    assert entry["route"] == "POST /v1/score" and entry["role"] == "caseworker" and entry["status"] == 200
    assert entry["model_version"] == "1" and entry["latency_ms"] > 0 and len(entry["persons"]) == 1
    text = settings.audit_log.read_text()
    assert body["person"]["person_id"] not in text
    assert "job_search" not in text and "values" not in text and keys["caseworker"] not in text


def test_openapi_example_works_as_sent(client, keys):
    spec = client.get("/openapi.json").json()
    example = spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]["examples"]["citizen"]["value"]
    response = client.post("/v1/score", json=example, headers=h(keys, "caseworker"))
    assert response.status_code == 200, response.text


def _tables_upload(small_tables, persons, fmt):
    files = {}
    for name in ("persons", "measurements", "activities"):
        table = small_tables[name][small_tables[name]["person_id"].isin(persons)]
        buffer = io.BytesIO()
        if fmt == "csv":
            table.to_csv(buffer, index=False)
        else:
            table.to_parquet(buffer, index=False)
        files[name] = (f"{name}.{fmt}", buffer.getvalue())
    return files


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cohort_upload_as_tables(client, keys, small_tables, fmt):
    persons = small_tables["persons"]["person_id"].head(40).tolist()
    response = client.post("/v1/cohorts/score?explain=true&at=every&format=json",
                           files=_tables_upload(small_tables, persons, fmt), headers=h(keys, "evaluator"))
    assert response.status_code == 200, response.text
    scores = pd.DataFrame(response.json()["scores"])
    occasions = small_tables["measurements"].query("person_id in @persons")[["person_id", "measured_at"]].drop_duplicates()
    assert len(scores) == len(occasions)
    logit = np.log(scores["probability"] / (1 - scores["probability"]))
    np.testing.assert_allclose(scores.filter(like="contribution__").sum(axis=1) + scores["base_value"], logit, atol=1e-6)


def test_cohort_json_lines_answer_as_csv_and_parquet(client, keys, small_tables):
    persons = small_tables["persons"]["person_id"].head(15).tolist()
    lines = "\n".join(json.dumps(citizen_body(small_tables, p)) for p in persons)
    headers = {**h(keys, "evaluator"), "content-type": "application/x-ndjson"}
    csv = client.post("/v1/cohorts/score?format=csv", content=lines, headers=headers)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert len(pd.read_csv(io.StringIO(csv.text))) == 15
    parquet = client.post("/v1/cohorts/score?format=parquet", content=lines, headers=headers)
    frame = pd.read_parquet(io.BytesIO(parquet.content))
    assert sorted(frame["person_id"]) == sorted(persons) and (frame["model_version"] == "1").all()


def test_cohort_errors_name_line_and_table_rows(client, keys, small_tables):
    good = json.dumps(citizen_body(small_tables, small_tables["persons"]["person_id"].iloc[0]))
    bad = json.loads(good)
    bad["person"]["origin"] = "mars"
    headers = {**h(keys, "evaluator"), "content-type": "application/x-ndjson"}
    errors = _errors(client.post("/v1/cohorts/score", content=good + "\n" + json.dumps(bad), headers=headers))
    assert "line[2].person.origin" in errors  # lines numbered as in the body, from 1
    files = _tables_upload(small_tables, small_tables["persons"]["person_id"].head(5).tolist(), "csv")
    measurements = pd.read_csv(io.BytesIO(files["measurements"][1]))
    measurements.loc[2, "job_search"] = 7
    files["measurements"] = ("measurements.csv", measurements.to_csv(index=False).encode())
    errors = _errors(client.post("/v1/cohorts/score", files=files, headers=h(keys, "evaluator")))
    assert errors["measurements[4].job_search"]["value"] == 7  # row 2 of the frame is line 4 of the file
    assert _errors(client.post("/v1/cohorts/score", files={"persons": files["persons"]}, headers=h(keys, "evaluator")))["measurements"]


def _register_second_model(small_cohort_dir):
    from training.train import train
    return train(small_cohort_dir, "logistic", 12, register=True, seed=7)["registered_version"]


def test_reload_swaps_in_a_new_champion_and_refuses_a_broken_one(client, keys, body, small_cohort_dir):
    import mlflow
    import mlflow.pyfunc

    from training.tracking import promote
    version = _register_second_model(small_cohort_dir)
    promote(version)
    response = client.post("/v1/admin/reload", headers=h(keys, "admin"))
    assert response.status_code == 200 and response.json()["serving"]["version"] == version
    assert client.post("/v1/score", json=body, headers=h(keys, "caseworker")).json()["model"]["version"] == version

    class Broken(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Broken())
    broken = mlflow.register_model(info.model_uri, "bip-employment").version
    promote(str(broken))
    response = client.post("/v1/admin/reload", headers=h(keys, "admin"))
    assert response.status_code == 409 and response.json()["serving"]["version"] == version
    assert client.post("/v1/score", json=body, headers=h(keys, "caseworker")).status_code == 200
    promote("1")
    assert client.post("/v1/admin/reload", headers=h(keys, "admin")).json()["serving"]["version"] == "1"


def _register_broken() -> str:
    import mlflow
    import mlflow.pyfunc

    class Broken(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Broken())
    return str(mlflow.register_model(info.model_uri, "bip-employment").version)


def test_every_worker_follows_a_reload_and_a_restarted_worker_serves_the_last_good_version(
        settings, keys, body, small_cohort_dir):
    from training.tracking import promote
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:  # two workers
        version = _register_second_model(small_cohort_dir)
        promote(version)
        assert one.post("/v1/admin/reload", headers=h(keys, "admin")).json()["serving"]["version"] == version
        deadline = time.time() + 2.0
        while time.time() < deadline and two.get("/ready").json()["model"]["version"] != version:
            time.sleep(0.05)
        assert two.get("/ready").json()["model"]["version"] == version  # within 2 s, without the 60 s poll
        promote(_register_broken())
        with TestClient(create_app(settings)) as restarted:
            ready = restarted.get("/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            assert ready.json()["model"]["version"] == version and "Exception" not in ready.text
            answer = restarted.post("/v1/score", json=body, headers=h(keys, "caseworker"))
            assert answer.status_code == 200 and answer.json()["model"]["version"] == version
        promote("1")
        assert one.post("/v1/admin/reload", headers=h(keys, "admin")).json()["serving"]["version"] == "1"


def test_periodic_check_follows_the_champion_alias(settings, keys, small_cohort_dir):
    from training.tracking import champion_version, promote
    watching = settings.model_copy(update={"reload_interval_s": 0.2})
    with TestClient(create_app(watching)) as client:
        first = client.get("/ready").json()["model"]["version"]
        other = "2" if first != "2" else "1"
        promote(other)
        deadline = time.time() + 20
        while time.time() < deadline and client.get("/ready").json()["model"]["version"] != other:
            time.sleep(0.2)
        assert client.get("/ready").json()["model"]["version"] == other == champion_version()
        promote("1")


def test_example_file_in_the_readme_is_the_built_in_example(schema):
    from pathlib import Path

    from serving.examples import example_body
    example = json.loads((Path(__file__).parent.parent / "serving" / "example_citizen.json").read_text())
    assert example == example_body(schema)
