"""Every validation error names table, row, column, value and what is allowed; all are reported."""

import pandas as pd
import pytest

from features.validation import ValidationError, find_problems, validate_tables

TODAY = pd.Timestamp("2026-11-27")


def problems_for(tables, schema):
    return find_problems(tables, schema, TODAY)


def only(problems, table, column):
    return [p for p in problems if p.table == table and p.column == column]


def test_simulated_cohort_is_valid(tables, schema):
    assert problems_for(tables, schema) == []


def test_unknown_indicator(tables, schema):
    tables["measurements"]["motivation"] = 3
    [problem] = only(problems_for(tables, schema), "measurements", "motivation")
    assert problem.row is None and "job_search" in problem.allowed


def test_value_off_the_scale_names_row_value_and_scale(tables, schema):
    m = tables["measurements"]
    m["job_search"] = m["job_search"].astype("float")
    m.loc[4, "job_search"] = 9
    m.loc[7, "job_search"] = 2.5
    found = only(problems_for(tables, schema), "measurements", "job_search")
    assert [(p.row, p.value) for p in found] == [(4, 9.0), (7, 2.5)]
    assert found[0].allowed == "an integer from 1 to 5"


def test_wrong_respondent_for_an_indicator(tables, schema):
    m = tables["measurements"]
    row = m.index[m["respondent"] == "citizen"][0]
    m.loc[row, "caseworker_belief"] = 4
    [problem] = only(problems_for(tables, schema), "measurements", "caseworker_belief")
    assert problem.row == row and "citizen" in problem.allowed and "caseworker" in problem.allowed


def test_unknown_respondent(tables, schema):
    tables["measurements"].loc[0, "respondent"] = "mentor"
    found = only(problems_for(tables, schema), "measurements", "respondent")
    assert [(p.row, p.value) for p in found] == [(0, "mentor")]


def test_date_in_the_future_and_before_enrolment(tables, schema):
    m, persons = tables["measurements"], tables["persons"]
    m.loc[3, "measured_at"] = pd.Timestamp("2031-01-01")
    person = m.loc[10, "person_id"]
    enrolled = persons.loc[persons["person_id"] == person, "enrolled_on"].iloc[0]
    m.loc[10, "measured_at"] = enrolled - pd.Timedelta(days=30)
    found = only(problems_for(tables, schema), "measurements", "measured_at")
    assert any(p.row == 3 and "on or before today" in p.allowed for p in found)
    assert any(p.row == 10 and "enrolled_on" in p.allowed for p in found)


def test_duplicate_measurement(tables, schema):
    m = tables["measurements"]
    tables["measurements"] = pd.concat([m, m.iloc[[5]]], ignore_index=True)
    found = only(problems_for(tables, schema), "measurements", "measured_at")
    assert [p.row for p in found] == [len(m)] and "one measurement per" in found[0].allowed


def test_measurement_of_an_unknown_person(tables, schema):
    tables["measurements"].loc[2, "person_id"] = "nobody"
    found = only(problems_for(tables, schema), "measurements", "person_id")
    assert [(p.row, p.value) for p in found] == [(2, "nobody")]


def test_activity_ending_before_it_starts_and_unknown_kind(tables, schema):
    a = tables["activities"]
    a.loc[0, "end"] = a.loc[0, "start"] - pd.Timedelta(days=1)
    a.loc[1, "kind"] = "yoga"
    problems = problems_for(tables, schema)
    assert [p.row for p in only(problems, "activities", "end")] == [0]
    [kind] = only(problems, "activities", "kind")
    assert kind.row == 1 and kind.value == "yoga" and "virksomhedspraktik" in kind.allowed


def test_every_problem_is_reported_not_just_the_first(tables, schema):
    tables["measurements"].loc[[1, 2, 3], "job_search"] = 0
    tables["activities"].loc[0, "kind"] = "yoga"
    tables["persons"].loc[0, "gender"] = "x"
    tables["outcomes"].loc[0, "status"] = "retired"
    with pytest.raises(ValidationError) as error:
        validate_tables(tables, schema, TODAY)
    found = {(p.table, p.column, p.row) for p in error.value.problems}
    assert {("measurements", "job_search", 1), ("measurements", "job_search", 2),
            ("measurements", "job_search", 3), ("activities", "kind", 0), ("persons", "gender", 0),
            ("outcomes", "status", 0)} <= found
    assert "5 problem" not in str(error.value) and "problem(s)" in str(error.value)


def test_missing_column_and_bad_persons(tables, schema):
    tables["persons"] = tables["persons"].drop(columns=["origin"])
    tables["persons"].loc[1, "birth_year"] = 1850
    tables["persons"].loc[2, "person_id"] = tables["persons"].loc[3, "person_id"]
    problems = problems_for(tables, schema)
    assert only(problems, "persons", "origin")[0].allowed == "a column that must be present"
    assert [p.row for p in only(problems, "persons", "birth_year")] == [1]
    assert [p.row for p in only(problems, "persons", "person_id")] == [3]


def test_outcome_month_must_be_a_month_start(tables, schema):
    tables["outcomes"].loc[0, "month"] = pd.Timestamp("2014-03-15")
    [problem] = only(problems_for(tables, schema), "outcomes", "month")
    assert problem.row == 0 and problem.value == "2014-03-15"


def test_problem_is_json_ready(tables, schema):
    tables["measurements"].loc[0, "measured_at"] = pd.Timestamp("2031-01-01")
    problem = only(problems_for(tables, schema), "measurements", "measured_at")[0].to_dict()
    assert problem == {"table": "measurements", "row": 0, "column": "measured_at",
                       "value": "2031-01-01", "allowed": "a date on or before today (2026-11-27)", "file": None}


def _normal(problems):
    def value(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
    return {(p.table, p.row, p.column, value(p.value), p.allowed) for p in problems}


def test_request_time_validator_finds_what_the_table_validator_finds(tables, schema):
    from features.citizen import Rating, Spell
    from features.validation import citizen_problems
    person_id = tables["measurements"]["person_id"].value_counts().index[0]
    persons = tables["persons"][tables["persons"]["person_id"] == person_id].reset_index(drop=True)
    m = tables["measurements"][tables["measurements"]["person_id"] == person_id].reset_index(drop=True)
    a = tables["activities"][tables["activities"]["person_id"] == person_id].reset_index(drop=True)
    m["job_search"] = m["job_search"].astype("float")
    m.loc[0, "job_search"] = 9
    m.loc[1, "measured_at"] = pd.Timestamp("2031-01-01")
    m.loc[2, "measured_at"] = persons.loc[0, "enrolled_on"] - pd.Timedelta(days=3)
    citizen_row = m.index[m["respondent"] == "citizen"][0]
    m.loc[citizen_row, "caseworker_belief"] = 2
    m["motivation"] = pd.array([None] * len(m), dtype="Int64")
    m.loc[3, "motivation"] = 4
    m = pd.concat([m, m.iloc[[4]]], ignore_index=True)
    if len(a):
        a.loc[0, "end"] = a.loc[0, "start"] - pd.Timedelta(days=2)
    table_problems = find_problems({"persons": persons, "measurements": m, "activities": a}, schema, TODAY)
    ratings = [Rating(r.measured_at.date(), r.respondent, r.caseworker_id,
                      {k: None if pd.isna(getattr(r, k)) else int(getattr(r, k)) for k in [*schema.keys, "motivation"]
                       if not pd.isna(getattr(r, k)) or k in schema})
               for r in m.itertuples()]
    spells = [Spell(r.kind, r.start.date(), None if pd.isna(r.end) else r.end.date()) for r in a.itertuples()]
    p = persons.iloc[0]
    person = {"birth_year": p.birth_year, "jobcenter": p.jobcenter, "enrolled_on": p.enrolled_on.date()}
    assert _normal(citizen_problems(person, ratings, spells, schema, TODAY)) == _normal(table_problems)
    assert len(table_problems) >= 7
