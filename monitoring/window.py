"""The rolling window of what the service scored: counts per day, aspect and category, shared
by every worker through one small SQLite file. No ids, no rows, only counts.

Each worker adds to its own counts in memory (no I/O on the request path) and writes them
into the file on a timer every Settings.monitoring_flush_s seconds (`flush_periodically`, run by
every worker's lifespan, so an idle worker's counts arrive too), when asked for the window and
at shutdown: an upsert per category, in one transaction. With flush_s <= 0 every observation is
written at once (tests, one-off scripts). Days older than the window are deleted.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

log = logging.getLogger("bip.monitoring")

_SCHEMA = """CREATE TABLE IF NOT EXISTS scored (
    day TEXT NOT NULL, model_version TEXT NOT NULL, aspect TEXT NOT NULL, category TEXT NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (day, model_version, aspect, category))"""


class ScoreWindow:
    def __init__(self, path: str | Path, window_days: int = 30, flush_s: float = 5.0):
        self.path, self.window_days, self.flush_s = Path(path), window_days, flush_s
        # (day, model version) -> counts per (aspect, category): a row's categories are added with
        # one Counter.update (a C loop) instead of a key tuple and an increment per aspect
        self._pending: dict[tuple[str, str], Counter] = defaultdict(Counter)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def observe(self, model_version: str, counts: dict[str, dict[str, int]], day: date | None = None) -> None:
        """Add one or many scored occasions' counts (from monitoring.profile.count_for_profile)."""
        day_text = (day or date.today()).isoformat()
        with self._lock:
            pending = self._pending[(day_text, str(model_version))]
            for aspect, categories in counts.items():
                for category, n in categories.items():
                    pending[(aspect, category)] += int(n)
        if self.flush_s <= 0:  # immediate mode; otherwise the timer writes (flush_periodically)
            self.flush()

    def observe_row(self, model_version: str, categories: list[tuple[str, str]], day: date | None = None) -> None:
        """Add one scored occasion, given as its (aspect, category) pairs (one per aspect, from
        monitoring.profile.ProfileCounter.row_categories): the request path's observation."""
        day_text = (day or date.today()).isoformat()
        with self._lock:
            self._pending[(day_text, str(model_version))].update(categories)
        if self.flush_s <= 0:
            self.flush()

    def flush(self) -> None:
        """Write this worker's counts into the shared file."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(Counter)
        rows = [(day, version, aspect, category, n) for (day, version), counts in pending.items()
                for (aspect, category), n in counts.items() if n]
        if not rows:
            return
        oldest = (date.today() - timedelta(days=self.window_days + 1)).isoformat()
        with self._connect() as db:
            db.executemany("INSERT INTO scored VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, model_version, aspect, "
                           "category) DO UPDATE SET n = n + excluded.n",
                           rows)
            db.execute("DELETE FROM scored WHERE day < ?", (oldest,))

    def counts(self, model_version: str, today: date | None = None) -> dict[str, dict[str, int]]:
        """Counts per aspect and category over the last window_days days, all workers together."""
        self.flush()
        first = ((today or date.today()) - timedelta(days=self.window_days - 1)).isoformat()
        out: dict[str, dict[str, int]] = defaultdict(dict)
        with self._connect() as db:
            rows = db.execute("SELECT aspect, category, SUM(n) FROM scored WHERE model_version = ? AND day >= ? "
                              "GROUP BY aspect, category", (str(model_version), first)).fetchall()
        for aspect, category, n in rows:
            out[aspect][category] = int(n)
        return dict(out)


async def flush_periodically(window: ScoreWindow) -> None:
    """Write `window`'s counts every flush_s seconds, off the event loop, until cancelled (each
    worker runs one from its lifespan). A failed write is logged; its counts are lost, the
    timer goes on."""
    from starlette.concurrency import run_in_threadpool
    if window.flush_s <= 0:
        return
    while True:
        await asyncio.sleep(window.flush_s)
        try:
            await run_in_threadpool(window.flush)
        except Exception:
            log.exception("monitoring window: flush failed")
