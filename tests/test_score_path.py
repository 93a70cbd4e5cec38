"""The fast per-request path (serving.citizen.score_citizen) gives the answer of the plain path.

The request path joins every booster into two compiled forests, forward-fills the ratings in a
numba kernel, and reads schema facts precomputed once per model. Here varied citizens (missing
answers, no citizen rows, one caseworker rating, activities ending or starting on as_of, rows out
of order, as_of between measurements) are scored, and every number of the answer must equal,
bit for bit, what the straightforward path gives from the same feature rows: one booster at a
time (Head.log_odds, Head.fold_log_odds, Head.explain), the curve's maximum and its source by a
loop, one numpy sigmoid per value. The feature rows must equal the pandas cohort builder's, and
hostile bodies must be refused with the problems the table validator finds, in schema order.
"""

from __future__ import annotations

import copy
import gc
import pickle
import re
import weakref
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from features.citizen import CitizenFeatures
from features.validation import find_problems
from models.scoring import sigmoid
from serving import texts
from serving.citizen import problem_field, request_tables, score_citizen
from serving.errors import InputProblems
from serving.schemas import ScoreRequest

TODAY = date(2026, 11, 27)


@pytest.fixture(scope="module")
def model(serving_store):
    from models.store import load_scoring_model
    return load_scoring_model()


def _bodies(tables) -> tuple[list, list]:
    """(valid, hostile) /v1/score bodies from a few simulated citizens."""
    from features.sources import citizen_body
    counts = tables["measurements"]["person_id"].value_counts()
    with_activities = set(tables["activities"]["person_id"])
    persons = [p for p in counts.index if p in with_activities][:4] + list(counts.index[-2:])
    rng = np.random.default_rng(22)
    valid, hostile = [], []
    for person in persons:
        body = citizen_body(tables, person)
        ms = body["measurements"]
        dates = sorted({m["measured_at"] for m in ms})
        kind = body["activities"][0]["kind"] if body["activities"] else "mentor"

        def variant(change):
            b = copy.deepcopy(body)
            change(b)
            return b
        valid += [
            body,
            variant(lambda b: b.update(as_of=dates[len(dates) // 2])),
            variant(lambda b: b.update(as_of=str(TODAY))),
            variant(lambda b: [m["values"].update({k: None}) for m in b["measurements"] for k in list(m["values"])
                               if rng.random() < 0.3]),
            variant(lambda b: [m["values"].pop(k) for m in b["measurements"] for k in list(m["values"])
                               if rng.random() < 0.1]),
            variant(lambda b: b.update(measurements=[m for m in ms if m["respondent"] == "caseworker"])),
            variant(lambda b: b.update(measurements=[m for m in ms if m["respondent"] == "caseworker"][:1])),
            variant(lambda b: b.update(measurements=b["measurements"][::-1], activities=[])),
            variant(lambda b: b["activities"].append({"kind": kind, "start": dates[-1], "end": None})),
            variant(lambda b: (b["activities"].append({"kind": kind, "start": dates[0], "end": dates[-1]}),
                               b.update(as_of=dates[-1]))),
            variant(lambda b: b["measurements"][0].update(measured_at=b["person"]["enrolled_on"])),
        ]
        i = int(rng.integers(len(ms)))
        key = next(iter(ms[0]["values"]))
        citizen_row = next((n for n, m in enumerate(ms) if m["respondent"] == "citizen"), None)
        caseworker_row = next(n for n, m in enumerate(ms) if m["respondent"] == "caseworker")
        hostile += [
            variant(lambda b: b["measurements"][i]["values"].update({next(iter(ms[i]["values"])): 9})),
            variant(lambda b: [m["values"].update({k: int(rng.integers(-2, 9)) if n or k != key else 0})
                               for n, m in enumerate(b["measurements"]) for k in list(m["values"])
                               if rng.random() < 0.2 or (n == 0 and k == key)]),
            variant(lambda b: (b["measurements"][-1]["values"].update(motivation=3),
                               b["measurements"][0]["values"].update(zzz=None))),
            variant(lambda b: b["measurements"][1 % len(ms)].update(measured_at="2031-01-01")),
            variant(lambda b: b["measurements"][0].update(measured_at="1990-01-01")),
            variant(lambda b: b["measurements"].append(copy.deepcopy(b["measurements"][0]))),
            variant(lambda b: b["person"].update(birth_year=2020, jobcenter="   ")),
            variant(lambda b: b["measurements"][caseworker_row].update(caseworker_id="  ")),
            variant(lambda b: b["measurements"][i].update(
                measured_at=str(date.fromisoformat(b["person"]["enrolled_on"]) - timedelta(days=3)))),
            variant(lambda b: b["activities"].append({"kind": kind, "start": dates[-1],
                                                      "end": str(date.fromisoformat(dates[-1]) - timedelta(days=1))})),
        ]
        if citizen_row is not None:
            hostile.append(variant(lambda b: b["measurements"][citizen_row]["values"].update(caseworker_belief=3)))
    return valid, hostile


def _plain_numbers(model, X: np.ndarray) -> dict:
    """The answer's numbers from feature rows X (as_of, then the previous occasion), one booster
    at a time: what the request path gave before its boosters were joined."""
    heads, k = model.heads, model.horizons.index(model.horizon_months)
    raw = np.stack([h.log_odds(X) for h in heads], axis=1)
    curve, source = raw.copy(), np.zeros(raw.shape, dtype=int)
    for j in range(1, raw.shape[1]):
        curve[:, j] = np.maximum(curve[:, j - 1], raw[:, j])
        source[:, j] = np.where(raw[:, j] >= curve[:, j], j, source[:, j - 1])
    parts, base = heads[k].explain(X)
    for row in range(len(X)):  # a row whose curve value is a shorter head's is explained by that head
        if source[row, k] != k:
            p, b = heads[source[row, k]].explain(X[row:row + 1])
            parts[row], base[row] = p[0], b[0]
    contributions = parts @ model._group_matrix
    folds = [h.fold_log_odds(X[:1]) for h in heads]
    rounds = min(len(f) for f in folds)
    fold_curves = np.stack([np.maximum.accumulate(np.stack([f[r] for f in folds], axis=1), axis=1)
                            for r in range(rounds)])
    spread = 1.96 * fold_curves.std(axis=0, ddof=1)
    log_odds = base + contributions.sum(axis=1)
    return {"contributions": contributions, "base": base, "log_odds": log_odds, "probability": sigmoid(log_odds),
            "curve": curve[0], "low": sigmoid(curve[:1] - spread)[0], "high": sigmoid(curve[:1] + spread)[0]}


def _value(X, names, column):
    return None if column not in names or np.isnan(X[0, names.index(column)]) else float(X[0, names.index(column)])


def test_fast_request_path_gives_the_plain_paths_answer_bit_for_bit(model, small_tables):
    valid, _ = _bodies(small_tables)
    schema, names = model.schema, model.spec.names
    builder = CitizenFeatures(schema)
    compared = 0
    for body in valid:
        request = ScoreRequest.model_validate(body)
        answer = score_citizen(model, request, TODAY)
        previous = answer["change"]["previous_as_of"]
        dates = [answer["as_of"]] + ([previous] if previous else [])
        X = builder.rows(request.person.model_dump(), request.measurements, request.activities, dates)
        cohort = model.features(pd.DataFrame({"person_id": request.person.person_id, "as_of": pd.to_datetime(dates)}),
                                request_tables(request, schema)).to_numpy()
        np.testing.assert_allclose(X, cohort, rtol=1e-12, atol=1e-12, equal_nan=True)
        plain = _plain_numbers(model, X)
        p, lo = float(plain["probability"][0]), plain["log_odds"][0]
        assert answer["probability"] == p
        assert answer["explanation"]["base_value"] == float(plain["base"][0])
        assert answer["explanation"]["log_odds"] == float(lo)
        assert [c["probability"] for c in answer["curve"]] == [float(sigmoid(v)) for v in plain["curve"]]
        assert [c["interval"]["low"] for c in answer["curve"]] == plain["low"].tolist()
        assert [c["interval"]["high"] for c in answer["curve"]] == plain["high"].tolist()
        assert answer["curve"][model.horizons.index(model.horizon_months)]["interval"]["low"] == answer["interval"]["low"]
        parts = {c["group"]: c for c in answer["explanation"]["contributions"]}
        assert list(parts) == sorted(model.groups, key=lambda g: -abs(plain["contributions"][0, model.groups.index(g)]))
        for g, group in enumerate(model.groups):
            c = float(plain["contributions"][0, g])
            pp = 100 * float(plain["probability"][0] - sigmoid(lo - c))
            indicator = group in schema
            active = _value(X, names, f"activity__{group[len('activity_'):]}__active")
            reason = texts.reasons(group, schema, pp, _value(X, names, f"{group}__cw_level") if indicator else None,
                                   _value(X, names, f"{group}__cit_level") if indicator else None,
                                   None if active is None else bool(active))
            assert parts[group] == {"group": group, "kind": "indicator" if indicator else "other", "contribution": c,
                                    "contribution_pp": pp, "label_da": texts.labels(group, schema)[0],
                                    "label_en": texts.labels(group, schema)[1],
                                    "reason_da": reason[0], "reason_en": reason[1]}
        if previous is not None:
            assert answer["change"]["previous_probability"] == float(plain["probability"][1])
            delta = plain["contributions"][0] - plain["contributions"][1]
            order = [g for g in np.argsort(-np.abs(delta)) if abs(delta[g]) >= 1e-9][:5]
            assert [(d["group"], d["change"], d["change_pp"]) for d in answer["change"]["drivers"]] == [
                (model.groups[g], float(delta[g]),
                 100 * float(sigmoid(plain["log_odds"][1] + delta[g]) - sigmoid(plain["log_odds"][1]))) for g in order]
        compared += 1
    assert compared == len(valid) >= 60


def test_hostile_bodies_are_refused_with_the_table_validators_problems_in_schema_order(model, small_tables):
    _, hostile = _bodies(small_tables)
    schema = model.schema
    for body in hostile:
        request = ScoreRequest.model_validate(body)
        with pytest.raises(InputProblems) as refused:
            score_citizen(model, request, TODAY)
        problems = refused.value.problems
        today = pd.Timestamp(TODAY)
        expected = {(problem_field(p), p.allowed) for p in find_problems(request_tables(request, schema), schema, today)}
        got = {(p["field"], p["allowed"]) for p in problems if not p["field"].startswith("as_of")}
        assert got == expected
        # the answers' problems, cell by cell: indicators in schema order, then rows in order
        cells = [(schema.position(m[2]), int(m[1])) for p in problems
                 if (m := re.fullmatch(r"measurements\[(\d+)\]\.values\.(\w+)", p["field"])) and m[2] in schema]
        assert cells == sorted(cells)


def test_request_path_caches_live_on_the_model_and_go_with_it(model, small_tables):
    """The joined forests and the row builder are kept on the loaded model, not in a module: a
    model no longer referenced is freed with them, and a pickled model carries none of them."""
    valid, _ = _bodies(small_tables)
    request = ScoreRequest.model_validate(valid[0])
    copy_ = pickle.loads(pickle.dumps(model))
    assert "_forests" not in copy_.__dict__ and "_citizen_features" not in copy_.__dict__
    assert score_citizen(copy_, request, TODAY) == score_citizen(model, request, TODAY)
    assert {"_forests", "_citizen_features"} <= set(copy_.__dict__)
    assert "_forests" not in pickle.loads(pickle.dumps(copy_)).__dict__
    gone = weakref.ref(copy_)
    del copy_
    gc.collect()
    assert gone() is None


def test_kept_reason_pieces_give_the_plain_sentences(schema):
    """texts.GroupReasons (the request path's, with openings and effects kept) writes what
    texts.reasons writes, for every group, on and around the rounding and negligible edges,
    asked twice (the second answer comes from what was kept)."""
    from features.build import feature_spec
    rng = np.random.default_rng(5)
    sizes = [0.0, -0.0, 0.04999, 0.05, -0.05, 0.15, 0.25, -0.35, 1.05, 7.45, 7.55, 99.95, -100.0, float("nan")]
    sizes += list(rng.uniform(-40, 40, 60))
    for group in feature_spec(schema).group_names:
        kept = texts.GroupReasons(group, schema)
        for _ in range(2):
            for pp in sizes:
                for caseworker, citizen, active in ((None, None, None), (3.0, None, None), (0.0, 4.0, None),
                                                    (5.0, 1.0, None), (None, None, True), (None, None, False),
                                                    (2.0, None, True)):
                    assert kept(pp, caseworker, citizen, active) == texts.reasons(group, schema, pp, caseworker,
                                                                                  citizen, active)
