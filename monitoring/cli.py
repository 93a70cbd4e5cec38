"""`bip monitor`."""

from __future__ import annotations

from pathlib import Path

import typer


def monitor_command(
    data: Path = typer.Option(..., help="Folder with the four tables, outcomes included."),
    out: Path = typer.Option(Path("var/monitoring"), help="Folder for report.html, its figures and monitoring.json."),
    model: str = typer.Option(None, help="Model URI (default: the champion the service serves)."),
    period: str = typer.Option("M", help="Cohort period: M (month) or Q (quarter)."),
    since: str = typer.Option(None, help="Only occasions on or after this date (ISO 8601)."),
    log: bool = typer.Option(True, help="Log the report and its figures to MLflow against the model version."),
) -> None:
    """Estimated (label-free) against realized performance by cohort month, drift against the
    training profile, an HTML report, logged to MLflow."""
    from monitoring.run import monitor
    if period not in ("M", "Q"):
        raise typer.BadParameter(f"{period!r}: allowed M or Q", param_hint="--period")
    summary = monitor(data, out, model, period, log, since)
    e, r = summary["estimated_labelled"] or summary["estimated"], summary["realized"] or {}
    typer.echo(f"model {summary['model']['name']} version {summary['model']['version']}: "
               f"{summary['n_occasions']} occasions, {summary['n_labelled']} with outcomes")
    typer.echo(f"ROC AUC estimated {e['roc_auc']:.3f}, realized {r.get('roc_auc', float('nan')):.3f}; "
               f"positive rate estimated {e['positive_rate']:.4f}, realized {r.get('positive_rate', float('nan')):.4f}")
    if summary["drift"]:
        flagged = [k for k, v in summary["drift"]["indicators"].items() if v["status"] in ("watch", "act")]
        typer.echo(f"drift: {summary['drift']['overall']}; flagged indicators: {', '.join(flagged) or 'none'}")
    typer.echo(f"report: {Path(out) / 'report.html'}"
               + (f"; MLflow run {summary['mlflow_run_id']}" if summary.get("mlflow_run_id") else ""))
