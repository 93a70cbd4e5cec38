"""`bip train`, `bip runs`, `bip promote`, `bip score`."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Optional

import typer

from bip.progress import QUIET, progress_bar


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived during training."""


@contextlib.contextmanager
def runs_fail_on_interrupt():
    """SIGTERM and SIGINT become an exception, so every open MLflow run (the parent and its
    nested model runs) ends FAILED rather than staying RUNNING; any other exception does the same.
    (kill -9 cannot be caught: such a run stays RUNNING.)"""
    import mlflow

    def interrupt(number, frame):
        raise Interrupted(signal.Signals(number).name)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except BaseException:
        while mlflow.active_run() is not None:  # runs opened outside a with-block
            mlflow.end_run("FAILED")
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _horizons(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        horizons = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise typer.BadParameter(f"{text!r}: allowed a comma-separated list of months, e.g. 3,6,12,24",
                                 param_hint="--horizons")
    if not horizons or not all(1 <= h <= 60 for h in horizons):
        raise typer.BadParameter(f"{text!r}: allowed months from 1 to 60", param_hint="--horizons")
    return horizons


def train_command(
    data: Path = typer.Option(Path("data/bip"), help="Folder with the four tables (and truth, if simulated)."),
    model: str = typer.Option("xgboost", help="xgboost or logistic: which model to register."),
    horizon: int = typer.Option(None, min=1, max=60, help="Default horizon in months: a score's `probability` "
                                "(default BIP_HORIZON_MONTHS, 12); it joins the curve."),
    horizons: str = typer.Option(None, help="The readiness curve, comma-separated months (default BIP_HORIZONS, "
                                 "3,6,12,24)."),
    register: bool = typer.Option(False, help="Register the model in the MLflow registry."),
    promote_if_better: bool = typer.Option(False, help="Register, and promote when there is no champion, or when it "
                                           "is like for like (horizons, schema) and beats the champion per horizon "
                                           "on the same out-of-time occasions and passes the stability gate."),
    seed: int = typer.Option(7, help="Seed for the booster."),
    test_from: str = typer.Option(None, help="First date of the out-of-time test (default: last 12 months)."),
    quiet: bool = QUIET,
) -> None:
    """Train the boosted model and the logistic baseline (one head per horizon), log both to MLflow."""
    from training.train import format_summary, train
    if model not in ("xgboost", "logistic"):
        raise typer.BadParameter(f"{model!r}: allowed xgboost or logistic", param_hint="--model")
    horizons = _horizons(horizons)
    with runs_fail_on_interrupt(), progress_bar(quiet) as progress:
        summary = train(data, model, horizon, register, promote_if_better, seed, test_from, horizons, progress)
    typer.echo(format_summary(summary))


def runs_command(
    limit: int = typer.Option(20, help="How many model runs to show."),
    compare: Optional[tuple[str, str]] = typer.Option(None, help="Two registered versions A B: B against A, "
                                                      "per horizon, and the stability report."),
    data: Path = typer.Option(None, help="Citizens for the stability report (default: B's training data)."),
) -> None:
    """Model runs side by side, newest first, with registry versions and the champion."""
    from training.runs import format_compare, format_runs
    if compare:
        try:
            typer.echo(format_compare(compare[0], compare[1], data))
        except LookupError as error:
            raise typer.BadParameter(str(error), param_hint="--compare")
        return
    typer.echo(format_runs(limit))


def promote_command(
    version: str = typer.Argument(..., help="Registered version to make champion."),
    force: bool = typer.Option(False, help="Promote even when it is not like for like (other horizons or "
                               "schema) or fails the stability gate; logged."),
    reason: str = typer.Option(None, help="Why, when more citizens change band than the stability gate allows; logged."),
    data: Path = typer.Option(None, help="Citizens for the stability report (default: the version's training data)."),
) -> None:
    """Move the champion alias to VERSION (also the way to roll back), after the like-for-like
    check and the stability report."""
    from models import store
    from training.promotion import promote_version
    from training.runs import tables_for
    store.configure_tracking()
    try:
        store.MlflowClient().get_model_version(store.MODEL_NAME, version)
    except Exception as error:  # an unknown version: say so plainly
        raise typer.BadParameter(f"no version {version} of {store.MODEL_NAME} ({error.__class__.__name__})",
                                 param_hint="VERSION")
    try:
        tables = tables_for(version, data)
    except (FileNotFoundError, ValueError) as error:  # ValidationError is a ValueError
        raise typer.BadParameter(str(error), param_hint="--data")
    result = promote_version(version, tables, force=force, reason=reason)
    typer.echo(result.describe())
    if not result.promoted:
        raise typer.Exit(1)
    from models.store import announce_model_change
    announce_model_change()  # services on this machine load it within a second


def score_command(
    data: Path = typer.Option(..., help="Folder with persons, measurements and activities."),
    out: Path = typer.Option(..., help="Output file (.parquet or .csv)."),
    at: str = typer.Option("latest", help="latest: one row per person; every: one per measurement."),
    explain: bool = typer.Option(False, help="Add per-indicator contributions (log-odds)."),
    model: str = typer.Option(None, help="Model URI (default models:/bip-employment@champion)."),
    quiet: bool = QUIET,
) -> None:
    """Score a cohort offline with the champion (or --model): probability at the default horizon,
    one probability_{H}m column per horizon of the curve, and the interval."""
    from training.scoring import score_cohort
    if at not in ("latest", "every"):
        raise typer.BadParameter(f"{at!r}: allowed latest or every", param_hint="--at")
    with progress_bar(quiet) as progress:
        frame = score_cohort(data, out, at, explain, model, progress)
    typer.echo(f"scored {len(frame)} rows with model version {frame['model_version'].iloc[0] if len(frame) else '-'} -> {out}")
