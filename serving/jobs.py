"""Heavy work as jobs, off the request path.

A job is a row in a SQLite store shared by every server worker (a poll may reach any of them, and
the store outlives a worker restart) plus a folder with its inputs and result. Each job runs in its
own process (`python -m serving.jobs JOB_ID`), started in a new session so a worker restart does not
take it down, under an address-space ceiling. At most `job_workers` run at once and at most
`job_queue` wait; the rest are refused (429). A job whose process died is marked failed with the
reason; finished jobs and their files are deleted after `job_retention_s`.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from bip.config import Settings, get_settings

log = logging.getLogger("bip.jobs")
STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
HEARTBEAT_S = 2.0
STALE_S = 30.0  # a running job whose process has not beaten for this long is dead

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0, message TEXT, params TEXT NOT NULL,
    created REAL NOT NULL, started REAL, finished REAL, heartbeat REAL, pid INTEGER,
    errors TEXT, result_file TEXT, media_type TEXT
)"""


class QueueFull(Exception):
    """More jobs waiting than the queue holds."""


class JobStore:
    """The jobs table and the job folders; safe to use from several processes at once."""

    def __init__(self, folder: Path, settings: Settings | None = None):
        self.folder = Path(folder)
        self.settings = settings or get_settings()
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)  # results hold pseudonymous ids and scores
        self.path = self.folder / "jobs.sqlite"
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @contextmanager
    def _db(self, immediate: bool = False):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA busy_timeout=30000")
            if immediate:
                db.execute("BEGIN IMMEDIATE")
            yield db
            if immediate:
                db.execute("COMMIT")
        except BaseException:
            if immediate and db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def job_dir(self, job_id: str) -> Path:
        return self.folder / job_id

    # --- the request side
    def create(self, owner: str, kind: str, params: dict) -> str:
        """A new queued job with an empty folder for its inputs; QueueFull when the queue is full."""
        job_id = secrets.token_hex(12)
        with self._db(immediate=True) as db:
            waiting = db.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
            if waiting >= self.settings.job_queue:
                raise QueueFull(f"{waiting} jobs waiting (BIP_JOB_QUEUE={self.settings.job_queue})")
            db.execute("INSERT INTO jobs (id, owner, kind, state, params, created, message) "
                       "VALUES (?, ?, ?, 'queued', ?, ?, 'waiting for a free job slot')",
                       (job_id, owner, kind, json.dumps(params), time.time()))
        self.job_dir(job_id).mkdir(mode=0o700)
        return job_id

    def get(self, job_id: str) -> dict | None:
        """The job's row as a dict (params and errors decoded), or None."""
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        job = dict(row)
        job["params"] = json.loads(job["params"])
        job["errors"] = json.loads(job["errors"]) if job["errors"] else None
        return job

    def counts(self) -> dict[str, int]:
        """Jobs by state (for metrics)."""
        with self._db() as db:
            rows = db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall()
        return {state: 0 for state in STATES} | {r[0]: r[1] for r in rows}

    def cancel(self, job_id: str) -> str:
        """Cancel a queued or running job (its process group is killed); returns the state after."""
        with self._db(immediate=True) as db:
            row = db.execute("SELECT state, pid FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["state"] in FINISHED:
                return row["state"] if row else "unknown"
            db.execute("UPDATE jobs SET state = 'cancelled', finished = ?, message = 'cancelled by the caller' "
                       "WHERE id = ?", (time.time(), job_id))
        if row["state"] == "running" and row["pid"]:
            try:
                os.killpg(row["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return "cancelled"

    def dispatch(self) -> None:
        """Start job processes for waiting jobs while there are free slots; also reap dead jobs
        and delete expired ones. Cheap; called on submit, on polls and by each finishing job."""
        self.reap()
        with self._db() as db:
            running = db.execute("SELECT count(*) FROM jobs WHERE state = 'running'").fetchone()[0]
            waiting = db.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
        for _ in range(min(waiting, max(0, self.settings.job_workers - running))):
            _spawn(self.folder, self.settings)

    def reap(self) -> None:
        """Running jobs whose process stopped beating are failed with the reason; finished jobs
        past the retention period are deleted with their files."""
        now = time.time()
        with self._db(immediate=True) as db:
            stale = db.execute("SELECT id, pid FROM jobs WHERE state = 'running' AND coalesce(heartbeat, started) < ?",
                               (now - STALE_S,)).fetchall()
            for row in stale:
                db.execute("UPDATE jobs SET state = 'failed', finished = ?, errors = ?, message = ? WHERE id = ?",
                           (now, json.dumps([{"field": "job", "value": None,
                                              "allowed": "the job process died (killed or out of memory); submit it again"}]),
                            "the job process died", row["id"]))
            expired = [r["id"] for r in db.execute(
                "SELECT id FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND finished < ?",
                (now - self.settings.job_retention_s,)).fetchall()]
            for job_id in expired:
                db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        for job_id in expired:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # --- the job side
    def claim(self, job_id: str) -> dict | None:
        """Mark a queued job running in this process when a slot is free; None otherwise."""
        with self._db(immediate=True) as db:
            running = db.execute("SELECT count(*) FROM jobs WHERE state = 'running'").fetchone()[0]
            if running >= self.settings.job_workers:
                return None
            changed = db.execute("UPDATE jobs SET state = 'running', started = ?, heartbeat = ?, pid = ?, "
                                 "message = 'started' WHERE id = ? AND state = 'queued'",
                                 (time.time(), time.time(), os.getpid(), job_id)).rowcount
        return self.get(job_id) if changed else None

    def next_queued(self) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1").fetchone()
        return row["id"] if row else None

    def progress(self, job_id: str, fraction: float, message: str) -> None:
        with self._db() as db:
            db.execute("UPDATE jobs SET progress = ?, message = ?, heartbeat = ? WHERE id = ? AND state = 'running'",
                       (max(0.0, min(1.0, fraction)), message[:300], time.time(), job_id))

    def beat(self, job_id: str) -> None:
        with self._db() as db:
            db.execute("UPDATE jobs SET heartbeat = ? WHERE id = ? AND state = 'running'", (time.time(), job_id))

    def finish(self, job_id: str, result_file: str, media_type: str, message: str = "done") -> None:
        with self._db() as db:
            db.execute("UPDATE jobs SET state = 'done', progress = 1, finished = ?, result_file = ?, media_type = ?, "
                       "message = ? WHERE id = ? AND state = 'running'",
                       (time.time(), result_file, media_type, message, job_id))

    def fail(self, job_id: str, errors: list[dict], message: str) -> None:
        with self._db() as db:
            db.execute("UPDATE jobs SET state = 'failed', finished = ?, errors = ?, message = ? "
                       "WHERE id = ? AND state = 'running'", (time.time(), json.dumps(errors), message[:300], job_id))


def public_job(job: dict) -> dict:
    """What a caller sees of a job: no owner, no pid, no file paths."""
    timings = {"created": job["created"], "started": job["started"], "finished": job["finished"]}
    end = job["finished"] or time.time()
    return {"job_id": job["id"], "kind": job["kind"], "state": job["state"], "progress": round(job["progress"], 3),
            "message": job["message"], "timings": timings,
            "elapsed_s": round(end - (job["started"] or job["created"]), 3),
            "errors": job["errors"],
            "status_url": f"/v1/jobs/{job['id']}",
            "result_url": f"/v1/jobs/{job['id']}/result" if job["state"] == "done" else None}


def _spawn(folder: Path, settings: Settings) -> None:
    """Start one job process; it claims the oldest waiting job itself (or exits if none is left).
    It gets this process's settings, so a job runs under the same limits, store and registry."""
    log_file = open(folder / "runner.log", "ab")
    env = {**os.environ, "BIP_JOB_SETTINGS": settings.model_dump_json(), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "serving.jobs", str(folder)], stdin=subprocess.DEVNULL,
                               stdout=log_file, stderr=log_file, start_new_session=True, close_fds=True, env=env)
    log_file.close()
    # reap the child when it exits so no zombie is left in a long-lived server worker
    threading.Thread(target=process.wait, daemon=True).start()


# --- the job process
def _run_next(folder: Path) -> None:
    settings = get_settings()
    store = JobStore(folder, settings)
    job_id = store.next_queued()
    job = store.claim(job_id) if job_id else None
    if job is None:
        return
    limit = settings.job_memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stop = threading.Event()

    def heartbeat():
        while not stop.wait(HEARTBEAT_S):
            store.beat(job_id)

    threading.Thread(target=heartbeat, daemon=True).start()
    from serving.work import run_job  # imported here: the heavy libraries load in the job process only
    try:
        result_file, media_type, message = run_job(job, store.job_dir(job_id),
                                                   lambda f, m: store.progress(job_id, f, m))
        store.finish(job_id, result_file, media_type, message)
    except MemoryError:
        store.fail(job_id, [{"field": "job", "value": None,
                             "allowed": f"a job within the memory ceiling of {limit / 2**30:.1f} GiB (BIP_JOB_MEMORY_BYTES)"}],
                   "out of memory")
    except Exception as error:  # noqa: BLE001 - every failure becomes the job's stated reason
        problems = getattr(error, "problems", None)
        if problems is None:
            log.error("job %s failed: %s", job_id, traceback.format_exc())
            problems = [{"field": "job", "value": None, "allowed": f"{error.__class__.__name__}: {str(error)[:300]}"}]
        store.fail(job_id, problems, f"{len(problems)} problem(s)" if hasattr(error, "problems") else "failed")
    finally:
        stop.set()
        store.dispatch()  # the next waiting job starts as this one ends


if __name__ == "__main__":
    from bip.config import use_settings
    logging.basicConfig(level=logging.INFO)
    if os.environ.get("BIP_JOB_SETTINGS"):
        use_settings(Settings.model_validate_json(os.environ["BIP_JOB_SETTINGS"]))
    _run_next(Path(sys.argv[1]))
