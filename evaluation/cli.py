"""`bip evaluate` and `bip evaluate-check`."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def evaluate_command(
    out: Path = typer.Option(..., help="Output folder for evaluation.json and report.html."),
    cohort: Path = typer.Option(None, help="Generic mode: a .csv or .parquet table, one row per unit."),
    treatment: str = typer.Option(None, help="Generic mode: the 0/1 treatment column."),
    outcome: str = typer.Option(None, help="Generic mode: the outcome column."),
    covariates: str = typer.Option(None, help="Generic mode: comma-separated covariate columns (default: all others)."),
    subgroups: str = typer.Option(None, help="Generic mode: comma-separated columns for subgroup effects."),
    data: Path = typer.Option(None, help="BIP mode: folder with the four tables."),
    kind: str = typer.Option(None, help="BIP mode: the intervention kind, e.g. virksomhedspraktik."),
    horizon: int = typer.Option(12, help="BIP mode: outcome horizon in months."),
    estimand: str = typer.Option("ATT", help="ATT or ATE."),
    seed: int = typer.Option(0, help="Seed for cross-fitting."),
    model: str = typer.Option(None, help="BIP mode: model URI for the readiness score (default: none)."),
) -> None:
    """Estimate an intervention's effect with AIPW: generic (--cohort) or BIP mode (--data --kind)."""
    from evaluation.estimate import EvaluationInputError, read_cohort, write_outputs
    from evaluation.run import compare_with_truth, evaluate_generic, evaluate_intervention
    try:
        if data is not None:
            from features.tables import load_and_validate
            if not kind:
                raise EvaluationInputError("kind", None, "an intervention kind in BIP mode")
            tables, schema = load_and_validate(data)
            scoring_model = None
            if model:
                from models.store import configure_tracking, load_scoring_model
                configure_tracking()
                scoring_model = load_scoring_model(model)
            result = evaluate_intervention(tables, schema, kind, horizon, estimand, seed, scoring_model)
            truth = compare_with_truth(result, Path(data) / "truth.json", horizon)
            if truth:
                result["truth"] = truth
            title = f"Effect of starting {kind} on job or education within {horizon} months"
        else:
            if cohort is None or not treatment or not outcome:
                raise EvaluationInputError("cohort", None, "--cohort, --treatment and --outcome (or --data and --kind)")
            frame = read_cohort(cohort)
            result = evaluate_generic(frame, treatment, outcome, covariates.split(",") if covariates else None,
                                      estimand, seed, subgroups.split(",") if subgroups else None)
            title = f"Effect of {treatment} on {outcome}"
    except EvaluationInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    public = write_outputs(result, out, title)
    summary = {k: public[k] for k in ("estimand", "estimate", "ci_low", "ci_high", "n_treated", "n_control")}
    typer.echo(json.dumps({**summary, "naive": public["naive"]["estimate"], "warnings": public["diagnostics"]["warnings"],
                           **({"truth": public["truth"]} if "truth" in public else {})}, indent=2))
    typer.echo(f"wrote {out / 'evaluation.json'} and {out / 'report.html'}")


def check_command(
    seeds: int = typer.Option(20, min=1, help="How many simulator seeds."),
    first_seed: int = typer.Option(100, help="The first seed."),
    persons: int = typer.Option(4000, min=200, help="Persons per simulated cohort."),
    out: Path = typer.Option(Path("data/evaluation_check.csv"), help="Per-seed rows."),
) -> None:
    """Coverage and bias of the BIP-mode estimates against the simulator's true effects."""
    from evaluation.check import check_command as run
    run(seeds, first_seed, persons, str(out))
