"""The audit trail: who asked for what, with pseudonymous ids only.

Person ids are hashed with a secret salt (HMAC-SHA256), so the trail can link requests about the
same person without revealing who it is; indicator values are never written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
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
    def __init__(self, path: Path, salt: bytes):
        self.path = path
        self.salt = salt
        self._lock = threading.Lock()
        self._handle = None
        path.parent.mkdir(parents=True, exist_ok=True)

    def pseudonym(self, person_id: str) -> str:
        return hmac.new(self.salt, str(person_id).encode(), hashlib.sha256).hexdigest()[:16]

    def write(self, *, key_id, role, route, person_ids, model_version, status, latency_ms):
        ids = list(person_ids or [])
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "key_id": key_id, "role": role, "route": route,
            "persons": [self.pseudonym(p) for p in ids[:20]],
            "n_persons": len(ids),
            "model_version": model_version, "status": status, "latency_ms": round(latency_ms, 3),
        }
        line = json.dumps(entry) + "\n"
        with self._lock:
            if self._handle is None:
                self._handle = _open_private(self.path)
            self._handle.write(line)


def _open_private(path: Path):
    """Append-only, line-buffered, mode 0600 (an existing wider file is narrowed)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1)
