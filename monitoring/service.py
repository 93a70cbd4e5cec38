"""The service's side of monitoring: the served model's reference profile, the shared window
of what it scored, and the drift report for `GET /v1/monitoring` and the metrics."""

from __future__ import annotations

import threading
import time

from monitoring.drift import drift_report
from monitoring.profile import ProfileCounter, load_reference_profile
from monitoring.window import ScoreWindow


class Monitor:
    """One per worker; workers share the window through Settings.monitoring_db."""

    def __init__(self, settings):
        self.settings = settings
        self.window = ScoreWindow(settings.monitoring_db, settings.monitoring_window_days,
                                  settings.monitoring_flush_s)
        self._profiles: dict[str, dict | None] = {}
        self._counters: dict[str, ProfileCounter] = {}
        self._lock = threading.Lock()
        self._cached: tuple[float, str | None, dict | None] = (0.0, None, None)

    def profile(self, loaded) -> dict | None:
        """The reference profile logged with the loaded model's run (read once per version)."""
        version = str(loaded.version)
        if version not in self._profiles:
            with self._lock:
                if version not in self._profiles:
                    run_id = (loaded.model.metadata or {}).get("run_id")
                    profile = load_reference_profile(run_id) if run_id else None
                    if profile is not None:
                        self._counters[version] = ProfileCounter(profile)
                    self._profiles[version] = profile
        return self._profiles[version]

    def observe(self, loaded, X: np.ndarray, probability) -> None:
        """Count scored feature rows into the window (nothing when the model has no profile)."""
        if self.profile(loaded) is not None:
            version = str(loaded.version)
            self.window.observe(version, self._counters[version].count(X, probability))

    def observe_row(self, loaded, x: list[float], probability: float) -> None:
        """Count one scored feature row (as floats) into the window: observe() for one row, at
        the request path's cost."""
        if self.profile(loaded) is not None:
            version = str(loaded.version)
            self.window.observe_row(version, self._counters[version].row_categories(x, probability))

    def report(self, loaded, max_age_s: float = 0.0) -> dict:
        """Drift of the window against the served model's profile, and the label-free estimates;
        reused for max_age_s seconds (the metrics scrape passes a few)."""
        at, version, cached = self._cached
        if cached is not None and version == str(loaded.version) and time.monotonic() - at < max_age_s:
            return cached
        model = {"name": loaded.name, "version": loaded.version, "alias": loaded.alias}
        profile = self.profile(loaded)
        if profile is None:
            return {"model": model, "available": False,
                    "reason": "the model's run has no reference profile (trained before profiles were logged)"}
        report = {"model": model, "available": True, "window_days": self.settings.monitoring_window_days,
                  **drift_report(profile, self.window.counts(str(loaded.version)), self.settings)}
        self._cached = (time.monotonic(), str(loaded.version), report)
        return report
