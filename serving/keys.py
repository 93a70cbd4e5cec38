"""API keys: stored as SHA-256 hashes with a role; the key itself is shown once."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ROLES = ("caseworker", "evaluator", "admin")


@dataclass(frozen=True)
class Caller:
    key_id: str
    role: str
    jobcenters: frozenset[str] | None = None  # the jobcentres whose citizens this key may read; None: all


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def add_key(path: Path, role: str, jobcenters: list[str] | None = None) -> tuple[str, str]:
    """Create a key for `role`, bound to `jobcenters` if given; returns (key_id, key). Only the hash is written."""
    if role not in ROLES:
        raise ValueError(f"role {role!r}: allowed {list(ROLES)}")
    key_id = secrets.token_hex(4)
    key = f"bip_{key_id}_{secrets.token_urlsafe(24)}"
    entry = {"key_id": key_id, "role": role, "sha256": _hash(key)}
    if jobcenters:
        entry["jobcenters"] = sorted(set(jobcenters))
    entries = _read(path) + [entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return key_id, key


def _jobcenters(entry: dict) -> frozenset[str] | None:
    bound = entry.get("jobcenters")
    return None if bound is None else frozenset(bound)


class KeyStore:
    def __init__(self, path: Path):
        self.path = path
        self._mtime = None
        self._by_hash: dict[str, Caller] = {}

    def _refresh(self):
        mtime = self.path.stat().st_mtime if self.path.exists() else None
        if mtime != self._mtime:
            self._by_hash = {e["sha256"]: Caller(e["key_id"], e["role"], _jobcenters(e)) for e in _read(self.path)}
            self._mtime = mtime

    def lookup(self, key: str | None) -> Caller | None:
        if not key:
            return None
        self._refresh()
        return self._by_hash.get(_hash(key))
