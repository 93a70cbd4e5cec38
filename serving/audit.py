"""The audit trail: who asked for what, with pseudonymous ids only.

Person ids are hashed with a secret salt (HMAC-SHA256), so the trail can link requests about the
same person without revealing who it is; indicator values are never written.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path


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
        self._handle = None
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
        # hmac.digest: the same HMAC-SHA256 as hmac.new(...).digest(), in one C call
        return hmac.digest(self.salt, str(person_id).encode("utf-8", "surrogatepass"), "sha256").hex()[:16]

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
        line = json.dumps(entry, ensure_ascii=True) + "\n"
        with self._lock:
            if self._handle is None:
                self._handle = _open_private(self.path)
            self._handle.write(line)


def _open_private(path: Path):
    """Append-only, line-buffered, mode 0600 (an existing wider file is narrowed)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1)
