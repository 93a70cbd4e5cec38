"""`bip train`, `bip runs`, `bip promote`, `bip score`."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import typer


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


def train_command(
    data: Path = typer.Option(Path("data/bip"), help="Folder with the four tables (and truth, if simulated)."),
    model: str = typer.Option("xgboost", help="xgboost or logistic: which model to register."),
    horizon: int = typer.Option(12, min=1, max=60, help="Horizon in months."),
    register: bool = typer.Option(False, help="Register the model in the MLflow registry."),
    promote_if_better: bool = typer.Option(False, help="Register, and promote when there is no champion or "
                                           "it beats the champion's out-of-time log loss on the same data."),
    seed: int = typer.Option(7, help="Seed for the booster."),
    test_from: str = typer.Option(None, help="First date of the out-of-time test (default: last 12 months)."),
) -> None:
    """Train the boosted model and the logistic baseline, log both to MLflow."""
    from training.train import format_summary, train
    if model not in ("xgboost", "logistic"):
        raise typer.BadParameter(f"{model!r}: allowed xgboost or logistic", param_hint="--model")
    with runs_fail_on_interrupt():
        summary = train(data, model, horizon, register, promote_if_better, seed, test_from)
    typer.echo(format_summary(summary))


def runs_command(limit: int = typer.Option(20, help="How many model runs to show.")) -> None:
    """Model runs side by side, newest first, with registry versions and the champion."""
    from training.runs import format_runs
    typer.echo(format_runs(limit))


def promote_command(version: str = typer.Argument(..., help="Registered version to make champion.")) -> None:
    """Move the champion alias to VERSION (also the way to roll back)."""
    from models.store import configure_tracking
    from training.tracking import champion_version, promote
    configure_tracking()
    before = champion_version()
    try:
        promote(version)
    except Exception as error:  # an unknown version: say so plainly
        raise typer.BadParameter(f"no version {version} of bip-employment ({error.__class__.__name__})",
                                 param_hint="VERSION")
    from models.store import announce_model_change
    announce_model_change()  # services on this machine load it within a second
    typer.echo(f"champion: version {before} -> {version}")


def score_command(
    data: Path = typer.Option(..., help="Folder with persons, measurements and activities."),
    out: Path = typer.Option(..., help="Output file (.parquet or .csv)."),
    at: str = typer.Option("latest", help="latest: one row per person; every: one per measurement."),
    explain: bool = typer.Option(False, help="Add per-indicator contributions (log-odds)."),
    model: str = typer.Option(None, help="Model URI (default models:/bip-employment@champion)."),
) -> None:
    """Score a cohort offline with the champion (or --model)."""
    from training.scoring import score_cohort
    if at not in ("latest", "every"):
        raise typer.BadParameter(f"{at!r}: allowed latest or every", param_hint="--at")
    frame = score_cohort(data, out, at, explain, model)
    typer.echo(f"scored {len(frame)} rows with model version {frame['model_version'].iloc[0] if len(frame) else '-'} -> {out}")
