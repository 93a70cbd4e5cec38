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
        path.write_text(secrets.token_hex(32))
        os.chmod(path, 0o600)
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
                self._handle = open(self.path, "a", encoding="utf-8", buffering=1)  # line-buffered
            self._handle.write(line)
