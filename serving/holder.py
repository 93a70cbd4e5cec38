"""The model being served: loaded once, swapped atomically, never replaced by one that fails."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from models.scoring import ScoringModel
from models.store import announce_model_change
from serving.observability import record_model_swap

log = logging.getLogger("bip.serving")


@dataclass(frozen=True)
class Loaded:
    model: ScoringModel
    name: str
    version: str | None
    alias: str | None
    uri: str
    pinned_uri: str  # the version loaded (models:/NAME/VERSION): jobs load exactly this one


def smoke_check(model: ScoringModel) -> None:
    """Score the built-in example citizen; raise if anything is off."""
    from serving.citizen import score_citizen
    from serving.examples import example_request
    result = score_citizen(model, example_request(model.schema), date.today())
    p = result["probability"]
    explanation = result["explanation"]
    total = explanation["base_value"] + sum(c["contribution"] for c in explanation["contributions"])
    if not (0.0 < p < 1.0) or abs(total - explanation["log_odds"]) > 1e-6:
        raise ValueError(f"smoke check failed: probability {p}, additivity gap {total - explanation['log_odds']}")


class ModelHolder:
    """The served model for one worker. Workers agree through two shared files beside the job
    store: a generation marker (any worker's reload, or `bip promote`, rewrites it and every worker
    reloads within a second) and the last version that passed the smoke check (what a fresh worker
    serves, as "degraded", when the champion cannot be loaded)."""

    def __init__(self, uri: str, marker: Path | None = None):
        self.uri = uri
        self.current: Loaded | None = None
        self.last_error: str | None = "no model loaded yet"
        self.degraded: str | None = None  # why the champion is not what is served
        self.marker = marker
        self.last_good = marker.with_name("last_good_model.json") if marker else None
        self._seen_marker = self._marker_stamp()
        self._refused_version: str | None = None
        self._lock = threading.Lock()  # one load at a time; readers never wait

    def champion_version(self) -> str | None:
        from models.store import resolve_model_uri
        try:
            return resolve_model_uri(self.uri)[2]
        except Exception:  # registry unreachable or alias gone: nothing to compare
            return None

    def _try(self, uri: str) -> Loaded:
        from models.store import load_scoring_model, resolve_model_uri
        pinned, name, version, alias = resolve_model_uri(uri)
        model = load_scoring_model(pinned)
        smoke_check(model)
        return Loaded(model, name or uri, version, alias, self.uri, pinned)

    def load(self) -> tuple[bool, str]:
        """Load the champion; swap it in only when it loads and passes the smoke check. A worker
        with nothing to serve falls back to the last version that passed (degraded)."""
        with self._lock:
            try:
                loaded = self._try(self.uri)
            except Exception as error:  # any failure keeps the old model serving
                reason = f"{self.uri}: {error.__class__.__name__}: {str(error)[:300]}"
                log.warning("model refused: %s", reason)
                self._refused_version = self.champion_version()
                if self.current is None:
                    self.last_error = reason
                    self._fall_back(reason)
                elif self.current.version != self._refused_version:
                    self.degraded = f"the champion was refused ({reason}); still serving version {self.current.version}"
                return False, reason
            previous, self.current = self.current, loaded  # atomic swap
            record_model_swap(previous, loaded)
            self.last_error, self.degraded, self._refused_version = None, None, None
            self._remember(loaded)
            return True, f"serving {loaded.name} version {loaded.version}"

    def _remember(self, loaded: Loaded) -> None:
        if self.last_good is None:
            return
        tmp = self.last_good.with_suffix(".tmp")
        tmp.write_text(json.dumps({"uri": self.uri, "pinned_uri": loaded.pinned_uri, "version": loaded.version}))
        tmp.replace(self.last_good)

    def _fall_back(self, reason: str) -> None:
        if self.last_good is None or not self.last_good.exists():
            return
        try:
            good = json.loads(self.last_good.read_text())
            if good.get("uri") != self.uri:  # the last good version of another model is no fallback
                return
            loaded = self._try(good["pinned_uri"])
        except Exception as error:  # noqa: BLE001 - nothing to serve then; /ready says so
            log.error("last good model could not be loaded either: %s", error)
            return
        self.current = loaded
        record_model_swap(None, loaded)
        self.degraded = f"the champion was refused ({reason}); serving the last good version {loaded.version}"
        log.warning("model degraded: %s", self.degraded)

    def _marker_stamp(self) -> int | None:
        try:
            return self.marker.stat().st_mtime_ns if self.marker else None
        except FileNotFoundError:
            return None

    def announce(self) -> None:
        """Tell every worker to reload now (rewrites the generation marker)."""
        if self.marker is not None:
            announce_model_change(self.marker)
            self._seen_marker = self._marker_stamp()  # this worker has just loaded

    def announced(self) -> bool:
        """Whether the marker changed since this worker last loaded (one stat)."""
        return self._marker_stamp() != self._seen_marker

    def reload_if_announced(self) -> bool:
        """Reload when another worker or `bip promote` rewrote the marker; cheap (one stat)."""
        stamp = self._marker_stamp()
        if stamp == self._seen_marker:
            return False
        self._seen_marker = stamp
        self.load()
        return True

    def reload_if_changed(self) -> None:
        version = self.champion_version()
        if version is None or version == self._refused_version:
            return
        if self.current is None or version != self.current.version:
            self.load()

