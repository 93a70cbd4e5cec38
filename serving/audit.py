"""The audit trail: who asked for what, with pseudonymous ids only.

Person ids are hashed with a secret salt (HMAC-SHA256), so the trail can link requests about the
same person without revealing who it is; indicator values are never written.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson


def load_salt(path: Path) -> bytes:
    env = os.environ.get("BIP_AUDIT_SALT")
    if env:
        return env.encode()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class AuditLog:
    """One line per authenticated request; requests without a known key are only counted (per
    route template and status) and written as one summary line per interval, so unauthenticated
    traffic cannot fill the disk. The file is 0600."""

    def __init__(self, path: Path, salt: bytes, refused_interval_s: float = 60.0):
        self.path = path
        self.salt = salt
        self.refused_interval_s = refused_interval_s
        self._lock = threading.Lock()
        self._fd: int | None = None
        # the keyed state built once; each pseudonym copies it (hmac.digest(salt, ..., "sha256")
        # looks the digest up and keys it on every call, most of its cost)
        self._mac = hmac.new(salt, digestmod=hashlib.sha256)
        self._refused: dict[str, int] = {}
        self._refused_since = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)

    def refused(self, route: str, status: int) -> None:
        """Count a request without a known key; at most one summary line per interval."""
        with self._lock:
            name = f"{route} {status}"
            self._refused[name] = self._refused.get(name, 0) + 1
            if time.monotonic() - self._refused_since < self.refused_interval_s:
                return
            counts, self._refused = self._refused, {}
            window, self._refused_since = time.monotonic() - self._refused_since, time.monotonic()
        self._append({"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                      "unauthenticated": counts, "window_s": round(window, 1)})

    def flush_refused(self) -> None:
        """Write the counts gathered so far (at shutdown)."""
        with self._lock:
            counts, self._refused = self._refused, {}
            window, self._refused_since = time.monotonic() - self._refused_since, time.monotonic()
        if counts:
            self._append({"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                          "unauthenticated": counts, "window_s": round(window, 1)})

    def pseudonym(self, person_id: str) -> str:
        """HMAC-SHA256 of the id under the salt, the first 16 hex digits."""
        mac = self._mac.copy()
        mac.update(str(person_id).encode("utf-8", "surrogatepass"))
        return mac.hexdigest()[:16]

    def write(self, *, key_id, role, route, person_ids, model_version, status, latency_ms):
        if key_id is None:  # no known key: counted, not written line by line
            return self.refused(route, status)
        ids = list(person_ids or [])
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "key_id": key_id, "role": role, "route": route,
            "persons": [self.pseudonym(p) for p in ids[:20]],
            "n_persons": len(ids),
            "model_version": model_version, "status": status, "latency_ms": round(latency_ms, 3),
        }
        self._append(entry)

    def _append(self, entry: dict) -> None:
        # one write(2) per line on an O_APPEND descriptor: each line reaches the file whole, at
        # its end, as it is written (nothing held in a buffer), whichever worker writes it
        line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            if self._fd is None:
                self._fd = _open_private(self.path)
            os.write(self._fd, line)


def _open_private(path: Path) -> int:
    """Append-only, mode 0600 (an existing wider file is narrowed)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return fd
