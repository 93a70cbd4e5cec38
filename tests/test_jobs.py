"""Heavy work as jobs: life cycle, ownership, queue limits, retention, dead job processes, size caps,
and the same scores from the job, the inline route and `bip score` (one score_tables)."""

import io
import os
import signal
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from bip.config import Settings
from serving.keys import add_key
from serving.main import create_app


def _settings(folder, **overrides) -> Settings:
    return Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl", audit_salt_file=folder / "salt",
                    jobs_dir=folder / "jobs", reload_interval_s=0, inline_cohort_citizens=50, **overrides)


@pytest.fixture(scope="module")
def service(tmp_path_factory, serving_store):
    folder = tmp_path_factory.mktemp("jobs")
    settings = _settings(folder)
    keys = {role: {"X-API-Key": add_key(settings.keys_file, role)[1]} for role in ("caseworker", "evaluator", "admin")}
    keys["other_evaluator"] = {"X-API-Key": add_key(settings.keys_file, "evaluator")[1]}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, keys, settings


def _upload(small_tables, persons=None, fmt="parquet", names=("persons", "measurements", "activities")):
    files = {}
    for name in names:
        table = small_tables[name]
        if persons is not None:
            table = table[table["person_id"].isin(persons)]
        buffer = io.BytesIO()
        table.to_csv(buffer, index=False) if fmt == "csv" else table.to_parquet(buffer, index=False)
        files[name] = (f"{name}.{fmt}", buffer.getvalue())
    return files


def wait_for(client, url, headers, timeout=180):
    """Poll a job until it has finished; returns its last status."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get(url, headers=headers).json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.3)
    raise AssertionError(f"job not finished after {timeout} s: {status}")


def test_large_cohort_is_a_job_with_the_same_scores_as_bip_score(service, small_tables, small_cohort_dir, tmp_path):
    client, keys, _ = service
    submitted = client.post("/v1/cohorts/score?at=every&explain=true&format=parquet",
                            files=_upload(small_tables), headers=keys["evaluator"])
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert submitted.headers["location"] == job["status_url"] and job["state"] in ("queued", "running")
    status = wait_for(client, job["status_url"], keys["evaluator"])
    assert status["state"] == "done", status
    assert status["progress"] == 1 and status["timings"]["finished"] >= status["timings"]["started"]
    result = client.get(status["result_url"], headers=keys["evaluator"])
    assert result.status_code == 200 and result.headers["content-type"] == "application/vnd.apache.parquet"
    got = pd.read_parquet(io.BytesIO(result.content))
    got["as_of"] = got["as_of"].astype("datetime64[s]")  # Parquet keeps ms

    from training.scoring import score_cohort
    expected = score_cohort(small_cohort_dir, tmp_path / "scores.parquet", "every", explain=True)
    assert len(got) == len(expected)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=False, rtol=0, atol=1e-12)


def test_small_cohort_is_answered_inline_with_the_same_scores(service, small_tables, small_cohort_dir, tmp_path):
    client, keys, _ = service
    persons = small_tables["persons"]["person_id"].head(30).tolist()
    answer = client.post("/v1/cohorts/score?format=parquet", files=_upload(small_tables, persons, "csv"),
                         headers=keys["evaluator"])
    assert answer.status_code == 200, answer.text
    got = pd.read_parquet(io.BytesIO(answer.content))
    got["as_of"] = got["as_of"].astype("datetime64[s]")
    from training.scoring import score_cohort
    expected = score_cohort(small_cohort_dir, tmp_path / "s.parquet", "latest")
    expected = expected[expected["person_id"].isin(persons)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=False, rtol=0, atol=1e-12)


def test_only_the_owner_or_an_admin_reads_a_job_and_cancel(service, small_tables):
    client, keys, _ = service
    job = client.post("/v1/cohorts/score?at=every&explain=true", files=_upload(small_tables),
                      headers=keys["evaluator"]).json()
    assert client.get(job["status_url"], headers=keys["other_evaluator"]).status_code == 403
    assert client.get(job["status_url"], headers=keys["caseworker"]).status_code == 403
    assert client.get(job["status_url"], headers=keys["admin"]).status_code == 200
    assert client.get(job["status_url"]).status_code == 401
    assert client.get("/v1/jobs/nonexistent", headers=keys["evaluator"]).status_code == 404
    cancelled = client.delete(job["status_url"], headers=keys["evaluator"])
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    status = client.get(job["status_url"], headers=keys["evaluator"]).json()
    assert status["state"] == "cancelled"
    assert client.get(job["status_url"] + "/result", headers=keys["evaluator"]).status_code == 409


def test_failed_job_names_the_problems(service, small_tables):
    client, keys, _ = service
    files = _upload(small_tables, fmt="csv")
    measurements = pd.read_csv(io.BytesIO(files["measurements"][1]))
    measurements.loc[3, "job_search"] = 9
    files["measurements"] = ("measurements.csv", measurements.to_csv(index=False).encode())
    job = client.post("/v1/cohorts/score", files=files, headers=keys["evaluator"]).json()
    status = wait_for(client, job["status_url"], keys["evaluator"])
    assert status["state"] == "failed"
    assert any(e["field"].startswith("measurements[") and e["value"] == 9 for e in status["errors"]), status


def test_queue_full_is_429_with_retry_after(tmp_path, serving_store, small_tables):
    settings = _settings(tmp_path, job_workers=0, job_queue=1)  # nothing runs, one may wait
    key = {"X-API-Key": add_key(settings.keys_file, "evaluator")[1]}
    with TestClient(create_app(settings)) as client:
        first = client.post("/v1/cohorts/score", files=_upload(small_tables), headers=key)
        assert first.status_code == 202 and first.json()["state"] == "queued"
        second = client.post("/v1/cohorts/score", files=_upload(small_tables), headers=key)
        assert second.status_code == 429 and int(second.headers["retry-after"]) > 0
        assert "BIP_JOB_QUEUE" in second.json()["detail"]


def test_results_are_deleted_after_the_retention_period(tmp_path, serving_store, small_tables):
    settings = _settings(tmp_path, job_retention_s=1)
    key = {"X-API-Key": add_key(settings.keys_file, "evaluator")[1]}
    with TestClient(create_app(settings)) as client:
        job = client.post("/v1/cohorts/score", files=_upload(small_tables), headers=key).json()
        assert wait_for(client, job["status_url"], key)["state"] == "done"
        folder = settings.jobs_dir / job["job_id"]
        assert folder.exists()
        time.sleep(1.5)
        assert client.get(job["status_url"], headers=key).status_code == 404
        assert not folder.exists()


def test_a_killed_job_process_is_failed_with_the_reason(tmp_path, serving_store, small_tables, monkeypatch):
    import serving.jobs
    monkeypatch.setattr(serving.jobs, "STALE_S", 1.0)
    settings = _settings(tmp_path)
    key = {"X-API-Key": add_key(settings.keys_file, "evaluator")[1]}
    with TestClient(create_app(settings)) as client:
        job = client.post("/v1/cohorts/score?at=every&explain=true", files=_upload(small_tables), headers=key).json()
        store = client.app.state.jobs
        deadline = time.time() + 60
        while (row := store.get(job["job_id"]))["pid"] is None and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(row["pid"], signal.SIGKILL)
        status = wait_for(client, job["status_url"], key, timeout=30)
        assert status["state"] == "failed" and "died" in status["errors"][0]["allowed"]


def test_oversized_parquet_is_refused_from_its_metadata(service, tmp_path):
    """10,000,000 identical rows compress to a few kB; the footer's row count refuses them unread:
    as persons by the citizens cap, as 60 columns of measurements by the job's memory ceiling."""
    client, keys, settings = service
    zeros = pa.array(np.zeros(10_000_000, dtype=np.int8))
    path = tmp_path / "persons.parquet"
    pq.write_table(pa.table({"person_id": zeros}), path, compression="zstd")
    assert path.stat().st_size < 1_000_000
    files = {"persons": ("persons.parquet", path.read_bytes()), "measurements": ("m.parquet", path.read_bytes())}
    answer = client.post("/v1/cohorts/score", files=files, headers=keys["evaluator"])
    assert answer.status_code == 413
    error = answer.json()["errors"][0]
    assert error["field"] == "persons" and "10000000 citizens" in error["value"]
    assert "BIP_MAX_COHORT_CITIZENS" in error["allowed"]

    wide = tmp_path / "measurements.parquet"
    pq.write_table(pa.table({f"c{i}": zeros for i in range(60)}), wide, compression="zstd")
    small = tmp_path / "few.parquet"
    pq.write_table(pa.table({"person_id": pa.array(["p1", "p2"])}), small)
    files = {"persons": ("persons.parquet", small.read_bytes()), "measurements": ("m.parquet", wide.read_bytes())}
    started = time.perf_counter()
    answer = client.post("/v1/cohorts/score", files=files, headers=keys["evaluator"])
    assert time.perf_counter() - started < 2.0
    assert answer.status_code == 413
    error = answer.json()["errors"][0]
    assert error["field"] == "measurements" and "10000000 rows of 60 columns" in error["value"]
    assert "BIP_JOB_MEMORY_BYTES" in error["allowed"]


def test_national_evaluation_sizes_fit_the_default_job_ceiling():
    """The national evaluation as bench/national_job.py sent it (100,000 persons over six years:
    1,355,204 measurement rows, 5.3M outcome months) fits a job under the default memory ceiling,
    and the estimate is not below what that job was measured to need (a 3.97 GiB address-space
    peak, the larger of two runs; docs/national-scale.md); ten times that is refused. The old
    fixed cap (2M rows per table) refused the national case outright."""
    from bip.config import Settings
    from serving.errors import TooLarge
    from serving.uploads import TableSize, check_job_memory, job_bytes
    national = [TableSize("persons", 100_000, 7, 1_889_235), TableSize("measurements", 1_355_204, 15, 10_871_087),
                TableSize("activities", 222_516, 4, 2_364_218), TableSize("outcomes", 5_295_552, 3, 7_052_907)]
    check_job_memory(national, "evaluation", Settings())
    assert 3.97 * 2**30 <= job_bytes(national, "evaluation") <= Settings().job_memory_bytes
    tenfold = [TableSize(s.name, 10 * s.rows, s.columns, 10 * s.unpacked) for s in national]
    with pytest.raises(TooLarge) as refused:
        check_job_memory(tenfold, "evaluation", Settings())
    assert refused.value.problem["field"] == "measurements"


def test_compressed_csv_and_too_many_citizens_are_refused(service, small_tables, tmp_path):
    import gzip
    client, keys, settings = service
    files = _upload(small_tables, fmt="csv")
    files["persons"] = ("persons.csv.gz", gzip.compress(files["persons"][1]))
    answer = client.post("/v1/cohorts/score", files=files, headers=keys["evaluator"])
    assert answer.status_code == 422 and answer.json()["errors"][0]["value"] == "gzip-compressed data"
    few = settings.model_copy(update={"max_cohort_citizens": 10, "jobs_dir": tmp_path / "jobs"})
    with TestClient(create_app(few)) as small:
        answer = small.post("/v1/cohorts/score", files=_upload(small_tables), headers=keys["evaluator"])
    assert answer.status_code == 413 and "BIP_MAX_COHORT_CITIZENS" in answer.json()["errors"][0]["allowed"]


def test_evaluations_are_jobs_generic_and_bip_mode(service, small_cohort_dir):
    from tests.test_evaluation import confounded_cohort
    client, keys, _ = service
    frame, _, _ = confounded_cohort(n=1500)
    files = {"cohort": ("cohort.csv", frame.to_csv(index=False).encode())}
    data = {"treatment": "treated", "outcome": "job", "covariates": "x1,x2,region"}
    submitted = client.post("/v1/evaluations", files=files, data=data, headers=keys["evaluator"])
    assert submitted.status_code == 202, submitted.text
    status = wait_for(client, submitted.json()["status_url"], keys["evaluator"])
    assert status["state"] == "done", status
    result = client.get(status["result_url"], headers=keys["evaluator"]).json()
    assert {"estimate", "ci_low", "ci_high", "diagnostics"} <= set(result)
    assert client.post("/v1/evaluations", files=files, data=data, headers=keys["caseworker"]).status_code == 403
    # a column the cohort lacks is refused at submit (422 naming field and value), not as a failed job
    bad = client.post("/v1/evaluations", files=files, data={**data, "outcome": "salary", "subgroups": "region,shoe"},
                      headers=keys["evaluator"])
    assert bad.status_code == 422, bad.text
    assert {(e["field"], e["value"]) for e in bad.json()["errors"]} == {("outcome", "salary"), ("subgroups", "shoe")}
    assert "treated" in bad.json()["errors"][0]["allowed"]
    bad = client.post("/v1/evaluations", files=files, data={**data, "covariates": "x1,treated"}, headers=keys["evaluator"])
    assert bad.status_code == 422 and bad.json()["errors"] == [
        {"field": "covariates", "value": "treated", "allowed": "columns other than the treatment and the outcome"}]
    # what only the estimation can tell (the outcome a copy of the treatment) fails the job, naming the field
    bad = client.post("/v1/evaluations", files=files, data={**data, "outcome": "treated"}, headers=keys["evaluator"])
    status = wait_for(client, bad.json()["status_url"], keys["evaluator"])
    assert status["state"] == "failed" and status["errors"][0]["field"] == "outcome"
    tables = {name: (f"{name}.parquet", (small_cohort_dir / f"{name}.parquet").read_bytes())
              for name in ("persons", "measurements", "activities", "outcomes")}
    # the targeting option: bad places refused at submit, naming the field; a rule learned in the job
    for data, field in (({"kind": "all", "policy": "true", "capacity": "mentor"}, "capacity"),
                        ({"kind": "all", "capacity": "mentor=3"}, "capacity"),
                        ({"kind": "all", "policy": "true", "capacity": "kurser=3"}, "capacity"),
                        ({"kind": "all", "policy": "true", "capacity": "mentor=-2"}, "capacity.mentor")):
        bad = client.post("/v1/evaluations", files=tables, data=data, headers=keys["evaluator"])
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field, bad.text
    submitted = client.post("/v1/evaluations", files=tables, data={"kind": "virksomhedspraktik", "policy": "true"},
                            headers=keys["evaluator"])
    status = wait_for(client, submitted.json()["status_url"], keys["evaluator"])
    assert status["state"] == "done", status
    result = client.get(status["result_url"], headers=keys["evaluator"]).json()
    assert result["policy"]["arms"] == ["none", "virksomhedspraktik"] and result["policy"]["rule"]["leaves"]
    html = client.get(status["result_url"] + "?format=html", headers=keys["evaluator"])
    assert html.status_code == 200 and "virksomhedspraktik" in html.text and "<img" in html.text
    assert "Which intervention for whom" in html.text


def test_published_band_effects_are_served_to_a_caseworker_key(service, small_tables):
    """An evaluator publishes an all-kinds evaluation; a caseworker key reads its effects by
    readiness band from GET /v1/evaluations/published, equal to the evaluation's own numbers."""
    from evaluation.run import evaluate
    from evaluation.tracking import log_evaluation, publish_evaluation
    client, keys, settings = service
    quick = settings.model_copy(update={"evaluation_folds": 2, "evaluation_repeats": 1})
    result = evaluate(small_tables, kind="all", progression=False, settings=quick, policy={"depth": 2})
    publish_evaluation(log_evaluation(result, settings=settings), settings)
    answer = client.get("/v1/evaluations/published", headers=keys["caseworker"])
    assert answer.status_code == 200, answer.text
    served = answer.json()
    targeting = served["targeting"]   # the rule travels as a group-level finding with its interval
    assert targeting["leaves"] == result["policy"]["rule"]["leaves"] and isinstance(targeting["checked"], bool)
    assert targeting["value"]["ci_low_points"] <= targeting["value"]["points"] <= targeting["value"]["ci_high_points"]
    assert "never an instruction" in targeting["note"]
    praktik, expected = served["kinds"]["virksomhedspraktik"], result["band_effects"]["virksomhedspraktik"]
    assert praktik["overall"]["effect_points"] == pytest.approx(100 * result["kinds"]["virksomhedspraktik"]["estimate"])
    assert praktik["by_band"] and set(praktik["by_band"]) == set(expected["by_band"])
    for band, effect in praktik["by_band"].items():
        assert effect["effect_points"] == pytest.approx(expected["by_band"][band]["effect_points"])
        assert effect["ci_low_points"] <= effect["effect_points"] <= effect["ci_high_points"]
    assert client.get("/v1/evaluations/published").status_code == 401


def _cohort_file(folder, name, content: bytes):
    path = folder / name
    path.write_bytes(content)
    return path


def _problems(call):
    from serving.errors import InputProblems
    with pytest.raises(InputProblems) as caught:
        call()
    return [(p["field"], p["value"]) for p in caught.value.problems]


def test_generic_cohort_with_a_column_name_twice_is_refused_at_submit(tmp_path):
    """Before: pandas read 'x1,x1' as x1 and x1.1 and the job went on with the first one, a silent
    guess at which column was meant."""
    from serving.uploads import check_cohort_columns
    path = _cohort_file(tmp_path, "cohort.csv", b"treated,job,x1,x1\n1,0,0.5,0.7\n0,1,0.1,0.2\n")
    named = {"treatment": ["treated"], "outcome": ["job"], "covariates": ["x1"], "subgroups": []}
    assert _problems(lambda: check_cohort_columns(path, named)) == [("cohort", "x1")]


def test_generic_parquet_cohort_columns_at_submit_are_those_the_job_reads(tmp_path):
    """Before: a Parquet cohort written from a frame indexed by a column listed that column in its
    schema, so submit accepted it, but the job's pd.read_parquet made it the index and failed."""
    from tests.test_evaluation import confounded_cohort

    from evaluation.estimate import read_cohort
    from serving.uploads import check_cohort_columns, cohort_columns
    frame, _, _ = confounded_cohort(n=50)
    path = tmp_path / "cohort.parquet"
    frame.set_index("region").to_parquet(path)
    assert cohort_columns(path) == list(read_cohort(path).columns)
    named = {"treatment": ["treated"], "outcome": ["job"], "covariates": ["x1"], "subgroups": ["region"]}
    assert _problems(lambda: check_cohort_columns(path, named)) == [("subgroups", "region")]


def test_generic_cohort_with_a_header_and_no_rows_is_refused_at_submit(tmp_path):
    """Before: accepted, then the job failed naming the outcome ('a numeric column ... with no
    empty rows'), though the cohort had no rows at all."""
    from serving.uploads import check_cohort_columns
    path = _cohort_file(tmp_path, "cohort.csv", b"treated,job,x1\n")
    named = {"treatment": ["treated"], "outcome": ["job"], "covariates": [], "subgroups": []}
    assert [field for field, _ in _problems(lambda: check_cohort_columns(path, named))] == ["cohort"]


def test_generic_cohort_in_the_declared_sep_and_encoding_is_read_at_submit_and_in_the_job(service, tmp_path):
    """Before: generic mode ignored the sep and encoding form fields (and `bip evaluate --sep`): a
    semicolon-separated cp1252 cohort was refused as one column, whatever was declared."""
    from tests.test_evaluation import confounded_cohort
    client, keys, _ = service
    frame, _, _ = confounded_cohort(n=600)
    frame = frame.rename(columns={"region": "område"})
    files = {"cohort": ("cohort.csv", frame.to_csv(index=False, sep=";").encode("cp1252"))}
    data = {"treatment": "treated", "outcome": "job", "covariates": "x1,x2,område"}
    undeclared = client.post("/v1/evaluations", files=files, data=data, headers=keys["evaluator"])
    assert undeclared.status_code == 422 and undeclared.json()["errors"][0]["field"] == "cohort", undeclared.text
    utf8 = {"cohort": ("cohort.csv", frame.to_csv(index=False, sep=";").encode())}
    no_sep = client.post("/v1/evaluations", files=utf8, data=data, headers=keys["evaluator"])
    assert no_sep.status_code == 422 and no_sep.json()["errors"][0]["field"] == "treatment", no_sep.text
    assert "looks ';'-separated: declare sep" in no_sep.json()["errors"][0]["allowed"]
    submitted = client.post("/v1/evaluations", files=files, data={**data, "sep": ";", "encoding": "cp1252"},
                            headers=keys["evaluator"])
    assert submitted.status_code == 202, submitted.text
    status = wait_for(client, submitted.json()["status_url"], keys["evaluator"])
    assert status["state"] == "done", status
    result = client.get(status["result_url"], headers=keys["evaluator"]).json()
    assert result["covariates"] == ["x1", "x2", "område"]
    # `bip evaluate --cohort ... --sep ';' --encoding cp1252` reads it the same way
    from evaluation.estimate import read_cohort
    from features.tables import FileFormat, declared_format
    path = _cohort_file(tmp_path, "cohort.csv", files["cohort"][1])
    with declared_format(FileFormat.declared(";", "cp1252")):
        assert list(read_cohort(path).columns) == list(frame.columns)
