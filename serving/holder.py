"""The model being served: loaded once, swapped atomically, never replaced by one that fails."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date

from models.scoring import ScoringModel
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
    def __init__(self, uri: str):
        self.uri = uri
        self.current: Loaded | None = None
        self.last_error: str | None = "no model loaded yet"
        self._lock = threading.Lock()  # one load at a time; readers never wait

    def champion_version(self) -> str | None:
        from models.store import resolve_model_uri
        try:
            return resolve_model_uri(self.uri)[2]
        except Exception:  # registry unreachable or alias gone: nothing to compare
            return None

    def load(self) -> tuple[bool, str]:
        """Load the model at self.uri; swap it in only when it loads and passes the smoke check."""
        from models.store import load_scoring_model, resolve_model_uri
        with self._lock:
            try:
                pinned, name, version, alias = resolve_model_uri(self.uri)
                model = load_scoring_model(pinned)
                smoke_check(model)
            except Exception as error:  # any failure keeps the old model serving
                reason = f"{self.uri}: {error.__class__.__name__}: {str(error)[:300]}"
                log.warning("model refused: %s", reason)
                if self.current is None:
                    self.last_error = reason
                return False, reason
            previous = self.current
            self.current = Loaded(model, name or self.uri, version, alias, self.uri, pinned)  # atomic swap
            record_model_swap(previous, self.current)
            self.last_error = None
            return True, f"serving {name} version {version}"

    def reload_if_changed(self) -> None:
        version = self.champion_version()
        if version is not None and (self.current is None or version != self.current.version):
            self.load()
