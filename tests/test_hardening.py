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
    """Before: 12-05-2014 was read as 5 December and 31-05-2014 as 31 May (format="mixed")."""
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

    from bip.cli import app
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

    from bip.cli import app
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
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        with pytest.raises(Interrupted):
            with runs_fail_on_interrupt():
                parent = mlflow.start_run()
                child = mlflow.start_run(nested=True)
                os.kill(os.getpid(), signal.SIGTERM)
        client = mlflow.MlflowClient()
        assert [client.get_run(r.info.run_id).info.status for r in (parent, child)] == ["FAILED", "FAILED"]
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlruns/mlflow.db"))
