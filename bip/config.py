"""The one configuration object: every setting of the service, training and evaluation.

Read from the environment (prefix BIP_, e.g. BIP_MAX_BODY_BYTES; the tracking URI from
MLFLOW_TRACKING_URI as MLflow's own tools expect). Code asks `get_settings()`; tests build a
`Settings(...)` with overrides and pass it where needed. Training logs the values it used as
MLflow params (`Settings.training_params()`).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"


class Settings(BaseSettings):
    """All settings; field names are the environment variables without the BIP_ prefix."""

    model_config = SettingsConfigDict(env_prefix="BIP_", protected_namespaces=(), extra="ignore",
                                      populate_by_name=True)

    # --- MLflow and the registry
    tracking_uri: str = Field(DEFAULT_TRACKING_URI,
                              validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "BIP_TRACKING_URI"))
    model_name: str = "bip-employment"
    model_alias: str = "champion"
    experiment: str = "bip-employment"
    evaluation_experiment: str = "bip-evaluations"

    # --- the service
    keys_file: Path = Path("var/keys.json")          # hashed API keys and roles
    audit_log: Path = Path("var/audit.jsonl")        # one JSON line per request
    audit_salt_file: Path = Path("var/audit_salt")   # secret salt for hashing person ids
    reload_interval_s: float = 60.0                  # how often to check the champion alias; 0 = never
    require_keys: bool = True
    # where citizens' histories are read (GET /v1/citizens/...): a folder of contract tables (Parquet
    # or CSV; the embedded default) or a database URL, e.g. postgresql+psycopg://reader@db:5432/citizens
    citizen_source: str = "data/bip"
    citizen_listing: int = 200                       # citizens listed at most per GET /v1/citizens

    # --- limits, checked before any work
    max_body_bytes: int = 64 * 1024 * 1024
    max_cohort_citizens: int = 100_000               # per cohort request or job
    # tables are capped by the memory their job is estimated to need (serving/uploads.py) against
    # job_memory_bytes; these optional hard caps are checked as well when set
    max_table_rows: int | None = None                # per uploaded table (Parquet metadata / streamed CSV count)
    max_decompressed_bytes: int | None = None        # per uploaded Parquet table, uncompressed size from metadata
    max_string_chars: int = 200                      # any text cell or field
    earliest_date: date = date(1990, 1, 1)           # earlier dates in the tables are refused as implausible
    birth_year_min: int = 1920                       # plausible birth years: this to (this year - min_age_years)
    min_age_years: int = 15
    max_header_bytes: int = 16 * 1024                # all request headers together; beyond: 431
    failed_keys_per_address: int = 20                # failed API keys per client address per window; then 429
    failed_keys_per_key: int = 50                    # failed attempts at one key id (bip_<id>_...) per window; then 429,
                                                     # but only for addresses that failed themselves (no lockout of the owner)
    failed_keys_window_s: float = 60.0
    audit_refused_interval_s: float = 60.0           # unauthenticated requests: one summary line per interval
    max_listed_problems: int = 1000
    inline_cohort_citizens: int = 2_000              # cohorts up to this size are scored in the request

    # --- jobs (heavy work off the request path)
    jobs_dir: Path = Path("var/jobs")                # job store: one SQLite file plus result files
    job_workers: int = 1                             # jobs running at once on this machine
    job_queue: int = 4                               # jobs waiting; beyond this: 429 with Retry-After
    job_memory_bytes: int = 6 * 1024 * 1024 * 1024   # address-space ceiling per job process
    job_retention_s: int = 24 * 3600                 # results (pseudonymous ids + scores) deleted after this
    dask_address: str | None = None                  # run jobs on this Dask scheduler instead of locally

    # --- monitoring (serving/observability.py, monitoring/)
    monitoring_db: Path = Path("var/monitoring.sqlite")  # the scored window: counts per day, shared by workers
    monitoring_window_days: int = 30                 # drift and estimates look at this many days of scores
    monitoring_flush_s: float = 5.0                  # a worker writes its counts to monitoring_db this often
    psi_watch: float = 0.1                           # PSI from here: watch
    psi_act: float = 0.25                            # PSI from here: act (investigate, consider retraining)
    drift_p_value: float = 0.01                      # and the chi-square test must reject at this level
    drift_min_count: int = 200                       # fewer scores in the window: no drift verdict
    monitoring_experiment: str = "bip-monitoring"

    # --- training
    horizon_months: int = 12                         # the default horizon: `probability` in a score
    horizons: list[int] = [3, 6, 12, 24]             # the readiness curve: one head per horizon
    folds: int = 5
    search_grid: list[tuple[int, bool]] = [(3, True), (5, True), (3, False), (5, False)]  # (depth, monotone)
    within_noise: float = 0.003                      # relative log-loss difference treated as a tie
    max_rounds: int = 1500
    search_max_examples: int = 150_000

    # --- promotion (like for like, and what changes for people)
    band_edges: tuple[float, float] = (0.05, 0.15)   # low / middle / high chance, as the caseworker page
    stability_max_band_change: float = 0.10          # more citizens changing band than this needs a reason
    promotion_tolerance: float = 0.003               # relative log-loss worsening at any horizon that blocks

    # --- evaluation
    min_arm: int = 20                                # fewer treated or controls than this: no estimate
    smd_warning: float = 0.1                         # a covariate left unbalanced beyond this is flagged
    trim: float = 0.02                               # propensity trimming
    treatment_window_days: int = 31                  # a kind starting within this many days is "treated"
    follow_up_3m_days: tuple[int, int] = (45, 135)
    follow_up_6m_days: tuple[int, int] = (135, 225)
    evaluation_folds: int = 4                        # cross-fitting folds, grouped by person (x evaluation_repeats)
    evaluation_repeats: int = Field(2, ge=1)         # cross-fits over fresh fold assignments, median-aggregated
    sensitivity: bool = True                         # omitted-variable-bias bounds for observational estimates
    sensitivity_benchmarks: tuple[str, ...] = ("job_search",)  # BIP mode: covariate groups refitted without,
                                                     # as "a hidden factor as strong as"; () = none (saves a refit each)
    evaluation_threads: int = 1                      # BLAS/OpenMP threads per evaluation (1: no oversubscription)
    comparison_per_treated: int = 5                  # ATT: comparison occasions kept per treated one ...
    comparison_min: int = 40_000                     # ... but never fewer than this (below it: no subsampling)
    max_treated: int = 20_000                        # treated occasions per kind beyond this: a random subsample
    score_bands: tuple[float, float] = (0.03, 0.10)  # readiness bands by the model's probability: low/middle/high
    rating_bands: tuple[float, float] = (2.5, 3.5)   # ... or by the mean caseworker rating when no model is given

    @property
    def model_uri(self) -> str:
        """The registry URI the service loads: models:/NAME@ALIAS."""
        return f"models:/{self.model_name}@{self.model_alias}"

    @property
    def model_marker(self) -> Path:
        """The generation marker beside the job store: rewritten on promote/reload, so every
        worker on this machine reloads within a second."""
        return self.jobs_dir / "model_generation"

    @property
    def failed_keys_db(self) -> Path:
        """Failed API keys of every worker on this machine (SQLite beside the job store), so the
        failed_keys_* limits hold for the service as a whole, not per worker."""
        return self.jobs_dir / "failed_keys.sqlite"

    def training_params(self) -> dict[str, str]:
        """The training constants as flat strings, for mlflow.log_params."""
        names = ("horizon_months", "horizons", "folds", "search_grid", "within_noise", "max_rounds",
                 "search_max_examples", "band_edges", "stability_max_band_change", "promotion_tolerance")
        return {f"config.{name}": str(getattr(self, name)) for name in names}


_chosen: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings: those chosen with use_settings, else read from the environment once."""
    return _chosen or _from_environment()


@lru_cache(maxsize=1)
def _from_environment() -> Settings:
    return Settings()


def use_settings(settings: Settings | None) -> None:
    """Make `settings` the process-wide settings (the service's app factory and job processes do;
    None goes back to the environment)."""
    global _chosen
    _chosen = settings
