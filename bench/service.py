"""Starting the processes a benchmark measures: `bip serve` (or any server command) in its own
session, output discarded, and waiting until it answers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def start(command: list[str], env: dict) -> subprocess.Popen:
    """A server process in its own session (so the benchmark can stop it and its workers)."""
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def serve(port: int, env: dict, workers: int = 2) -> subprocess.Popen:
    """`bip serve --port PORT --workers N` from this checkout's venv."""
    return start([str(BIN / "bip"), "serve", "--port", str(port), "--workers", str(workers)], env)


def wait_for(url: str, seconds: float = 120) -> None:
    """Return when `url` answers 200; raise after `seconds` (a benchmark must not measure a server
    that never came up)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not become ready")
