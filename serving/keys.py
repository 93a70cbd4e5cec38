"""API keys: stored as SHA-256 hashes with a role; the key itself is shown once.

The keys file is JSON, written atomically with mode 0600. A file that is not valid keeps the
service from starting (KeyFileError, with the reason); one that breaks while the service runs is
treated as holding no keys (every keyed request gets 401, never 500) and logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROLES = ("caseworker", "evaluator", "admin")
log = logging.getLogger("bip.keys")


class KeyFileError(ValueError):
    """The keys file is not a valid list of keys."""


@dataclass(frozen=True)
class Caller:
    key_id: str
    role: str
    jobcenters: frozenset[str] | None = None  # the jobcentres whose citizens this key may read; None: all


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def read_keys(path: Path) -> list[dict]:
    """The entries of the keys file ([] when there is none); KeyFileError when it is not valid."""
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise KeyFileError(f"{path}: not valid JSON ({error.__class__.__name__}: {error}); restore it from a "
                           "backup or move it away and add keys again with `bip keys add`") from None
    if not isinstance(entries, list):
        raise KeyFileError(f"{path}: a JSON list of keys expected")
    for number, entry in enumerate(entries):
        if not (isinstance(entry, dict) and isinstance(entry.get("key_id"), str) and entry.get("role") in ROLES
                and isinstance(entry.get("sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])):
            raise KeyFileError(f"{path}: entry {number} is not a key (key_id, role in {list(ROLES)}, sha256)")
    return entries


def _write(path: Path, entries: list[dict]) -> None:
    """Atomic replace with mode 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(entries, indent=2))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def add_key(path: Path, role: str, jobcenters: list[str] | None = None) -> tuple[str, str]:
    """Create a key for `role`, bound to `jobcenters` if given; returns (key_id, key). Only the hash is written."""
    if role not in ROLES:
        raise ValueError(f"role {role!r}: allowed {list(ROLES)}")
    key_id = secrets.token_hex(4)
    key = f"bip_{key_id}_{secrets.token_urlsafe(24)}"
    entry = {"key_id": key_id, "role": role, "sha256": _hash(key),
             "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if jobcenters:
        entry["jobcenters"] = sorted(set(jobcenters))
    _write(path, read_keys(path) + [entry])
    return key_id, key


def _jobcenters(entry: dict) -> frozenset[str] | None:
    bound = entry.get("jobcenters")
    return None if bound is None else frozenset(bound)


def list_keys(path: Path) -> list[dict]:
    """key_id, role, jobcentres bound to and creation time of every key (never the hash)."""
    return [{"key_id": e["key_id"], "role": e["role"], "jobcenters": e.get("jobcenters"), "created": e.get("created")}
            for e in read_keys(path)]


def revoke_key(path: Path, key_id: str) -> bool:
    """Remove the key with this id; False when there is none. A running service stops accepting
    it at its next request (the file's change is noticed)."""
    entries = read_keys(path)
    kept = [e for e in entries if e["key_id"] != key_id]
    if len(kept) == len(entries):
        return False
    _write(path, kept)
    return True


class KeyStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp = None
        self._by_hash: dict[str, Caller] = {}
        self._refresh(strict=True)  # a broken keys file stops the start, with the reason

    def _refresh(self, strict: bool = False):
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        try:
            entries = read_keys(self.path)
        except KeyFileError:
            if strict:
                raise
            log.error("keys file %s is not valid: treating it as holding no keys until it is fixed", self.path)
            entries = []
        if stamp is not None and stamp[1] and (self.path.stat().st_mode & 0o077):
            log.warning("keys file %s is readable by others; chmod 600 it", self.path)
        self._by_hash = {e["sha256"]: Caller(e["key_id"], e["role"], _jobcenters(e)) for e in entries}
        self._stamp = stamp

    def lookup(self, key: str | None) -> Caller | None:
        if not key:
            return None
        self._refresh()
        return self._by_hash.get(_hash(key))
