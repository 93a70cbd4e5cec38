"""POST /v1/score's short lane (serving.routes.score.ScoreRoute) answers as FastAPI's own handler.

The usual request (Content-Type application/json, a body that validates) skips FastAPI's
dependency solving; any other request is handed to FastAPI's handler. Sending the same body with
"application/json; charset=utf-8" takes FastAPI's handler, so the two lanes are compared in one
app: the same bytes for valid bodies, the same status and problems for hostile ones.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from bip.config import Settings
from serving.schemas import ScoreRequest

SHORT = "application/json"
LONG = "application/json; charset=utf-8"  # the same media type: FastAPI's handler takes it


@pytest.fixture(scope="module")
def service(tmp_path_factory, serving_store):
    from serving.keys import add_key
    from serving.main import create_app
    folder = tmp_path_factory.mktemp("score_route")
    settings = Settings(keys_file=folder / "keys.json", audit_log=folder / "audit.jsonl",
                        audit_salt_file=folder / "salt", jobs_dir=folder / "jobs", reload_interval_s=0,
                        failed_keys_per_address=10_000, failed_keys_per_key=10_000)
    key = add_key(settings.keys_file, "caseworker")[1]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, key


@pytest.fixture(scope="module")
def bodies(small_tables):
    from features.sources import citizen_body
    counts = small_tables["measurements"]["person_id"].value_counts()
    return [citizen_body(small_tables, p) for p in (*counts.index[:3], counts.index[-1])]


def _post(client, key, content: bytes, content_type: str):
    return client.post("/v1/score", content=content, headers={"X-API-Key": key, "content-type": content_type})


def test_the_usual_request_skips_dependency_solving_and_answers_the_same_bytes(service, bodies, monkeypatch):
    import fastapi.routing
    client, key = service
    solve = fastapi.routing.solve_dependencies
    for body in bodies:
        content = json.dumps(body).encode()
        long = _post(client, key, content, LONG)
        assert long.status_code == 200, long.text
        monkeypatch.setattr(fastapi.routing, "solve_dependencies", _not_called)
        short = _post(client, key, content, SHORT)
        monkeypatch.setattr(fastapi.routing, "solve_dependencies", solve)
        assert short.status_code == 200, short.text
        assert short.content == long.content
        assert short.headers["content-type"] == long.headers["content-type"] == "application/json"


async def _not_called(**_):
    raise AssertionError("the usual request went through FastAPI's dependency solving")


def _hostile(body: dict) -> list[bytes]:
    """Bodies to refuse, or to accept only as FastAPI's handler does: broken JSON, the values
    json.loads accepts and validation refuses, encodings, duplicate keys, nesting, surrogates."""
    text = json.dumps(body)
    rating = f'"{next(iter(body["measurements"][0]["values"]))}": '
    values = next(v for v in body["measurements"][0]["values"].values())
    swap = lambda old, new: text.replace(old, new, 1).encode("utf-8", "surrogatepass")  # noqa: E731
    out = [b"", b"{", b"{not json", b"null", b"[]", b"{}", text.encode() + b" x", (text + " \n").encode(),
           b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16"), text.encode() + b"\xff",
           ("[" * 5000 + "]" * 5000).encode(), text[:-1].encode() + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"]
    for bad in ("NaN", "Infinity", "-Infinity", "1e309", "3.0", "3e0", "-0", "03", "true", '"3"', "9" * 400,
                "18446744073709551617", "-1", "null"):
        out.append(swap(f"{rating}{json.dumps(values)}", f"{rating}{bad}"))
        out.append(swap(f'"birth_year": {body["person"]["birth_year"]}', f'"birth_year": {bad}'))
    jobcenter = json.dumps(body["person"]["jobcenter"])
    for bad in ('"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"J\tC"', '"J\\u0000C"', '" "', '""'):
        out.append(swap(f'"jobcenter": {jobcenter}', f'"jobcenter": {bad}'))
    out.append(swap(f'"jobcenter": {jobcenter}', '"jobcenter": "J\ud800C"'))  # a surrogate as raw UTF-8 bytes
    first = body["measurements"][0]["measured_at"]
    for bad in ("2014-13-45", "٢٠٢١-01-01", "2021-01-01T00:00:00", "20210101", "1800-01-01", "2999-01-01"):
        out.append(swap(f'"measured_at": "{first}"', f'"measured_at": "{bad}"'))
    person_id = json.dumps(body["person"]["person_id"])
    out += [swap(f'"person_id": {person_id}', f'"person_id": {person_id}, "person_id": "other"'),
            swap(f"{rating}{json.dumps(values)}", f"{rating}{json.dumps(values)}, {rating}99"),
            text[:-1].encode() + b', "as_of": null, "as_of": "1999-01-01"}',
            text[:-1].encode() + b', "extra": 1}']
    return out


def test_hostile_bodies_get_the_same_answer_in_both_lanes(service, bodies):
    client, key = service
    statuses = set()
    for content in _hostile(bodies[0]):
        short, long = _post(client, key, content, SHORT), _post(client, key, content, LONG)
        assert short.status_code == long.status_code and short.content == long.content, (content[:200], short.text)
        assert short.status_code < 500, (content[:200], short.text)
        statuses.add(short.status_code)
    assert {400, 422} <= statuses


def _validated_from_bytes(content: bytes):
    try:
        return ScoreRequest.model_validate_json(content)
    except ValidationError:
        return None


def _validated_as_fastapi_does(content: bytes):
    try:
        return ScoreRequest.model_validate(json.loads(content))
    except (ValueError, ValidationError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        return None


def test_parsing_from_bytes_accepts_only_what_the_long_lane_accepts_with_the_same_values(bodies):
    """The short lane parses the bytes with pydantic; FastAPI runs json.loads and validates the
    dict. Wherever the first accepts, the second must accept the same values: on hand-made
    hostile bodies and on random byte edits of real ones."""
    rng = np.random.default_rng(7)
    alphabet = list(b'{}[]",:0123456789-.eE+ \t\n\\/uadnNtrfl') + [0xff, 0xed, 0xa0, 0x80, 0x00, 0xc3, 0xa6]
    cases = [c for body in bodies for c in _hostile(body)]
    for _ in range(3000):
        content = bytearray(json.dumps(copy.deepcopy(bodies[int(rng.integers(len(bodies)))])).encode())
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(len(content)))
            what = int(rng.integers(3))
            if what == 0:
                del content[at]
            elif what == 1:
                content[at] = alphabet[int(rng.integers(len(alphabet)))]
            else:
                content.insert(at, alphabet[int(rng.integers(len(alphabet)))])
        cases.append(bytes(content))
    accepted = 0
    for content in cases:
        short = _validated_from_bytes(content)
        if short is not None:
            accepted += 1
            assert short == _validated_as_fastapi_does(content), content[:300]
    assert 100 < accepted < len(cases) - 1000  # both kinds were tried


def test_audit_pseudonyms_stay_the_hmac_sha256_of_the_id(tmp_path):
    """Pseudonyms link requests about one person across the whole trail, so they must not change
    with how they are computed: HMAC-SHA256 of the id under the salt, its first 16 hex digits."""
    import hashlib
    import hmac

    from serving.audit import AuditLog
    audit = AuditLog(tmp_path / "audit.jsonl", b"a salt")
    for person_id in ("p1", "Pæø-7", "x" * 300, "\ud800", 12345):
        expected = hmac.new(b"a salt", str(person_id).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]
        assert audit.pseudonym(person_id) == expected
