"""`bip evaluate`, `bip evaluate-publish` and `bip evaluate-check`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bip.progress import QUIET, progress_bar


def evaluate_command(
    out: Path = typer.Option(..., help="Output folder for evaluation.json, report.html (and band_effects.json)."),
    cohort: Path = typer.Option(None, help="Generic mode: a .csv or .parquet table, one row per unit."),
    treatment: str = typer.Option(None, help="Generic mode: the 0/1 treatment column."),
    outcome: str = typer.Option(None, help="Generic mode: the outcome column."),
    covariates: str = typer.Option(None, help="Generic mode: comma-separated covariates (default: all others "
                                               "except id-like columns, which are listed)."),
    subgroups: str = typer.Option(None, help="Generic mode: comma-separated columns for subgroup effects."),
    design: str = typer.Option("observational", help="Generic mode: observational or randomized."),
    data: Path = typer.Option(None, help="BIP mode: folder with the four tables."),
    kind: str = typer.Option("all", help="BIP mode: 'all' or one intervention kind, e.g. virksomhedspraktik."),
    horizon: int = typer.Option(12, help="BIP mode: outcome horizon in months."),
    estimand: str = typer.Option("ATT", help="ATT or ATE."),
    seed: int = typer.Option(0, help="Seed for cross-fitting."),
    model: str = typer.Option(None, help="BIP mode: model URI for the readiness score (default: none)."),
    language: str = typer.Option("da", help="The report's first language: da or en (it has a switch)."),
    log: bool = typer.Option(True, help="Log the evaluation as an MLflow run."),
    publish: bool = typer.Option(False, help="BIP mode: mark this evaluation as the published one."),
    policy: bool = typer.Option(False, help="BIP mode: also learn which intervention for whom (a depth-2 rule, "
                                "its value beside current practice; report section 'Which intervention for whom')."),
    capacity: str = typer.Option(None, help="With --policy: places per kind, e.g. mentor=300,loentilskud=0.05 "
                                 "(a number of decision points, or a share below 1)."),
    quiet: bool = QUIET,
) -> None:
    """Estimate intervention effects: generic (--cohort) or BIP mode (--data, every kind by default)."""
    from evaluation.estimate import EvaluationInputError, read_cohort, write_outputs
    from evaluation.run import compare_with_truth, evaluate
    try:
        if language not in ("da", "en"):
            raise EvaluationInputError("language", language, "da or en")
        from evaluation.policy import check_policy_parameters, parse_capacity
        targeting = {"capacity": parse_capacity(capacity), "depth": 2} if policy else None
        if targeting is not None:
            check_policy_parameters([], targeting["capacity"], 2)   # before reading anything
        if data is not None:
            from features.tables import load_and_validate
            with progress_bar(quiet) as progress:
                progress(0.0, f"reading {data}")
                tables, schema = load_and_validate(data)
                scoring_model = None
                if model:
                    from models.store import configure_tracking, load_scoring_model
                    progress(0.0, f"loading {model}")
                    configure_tracking()
                    scoring_model = load_scoring_model(model)
                result = evaluate(tables, kind=kind, horizon=horizon, estimand=estimand, seed=seed,
                                  model=scoring_model, schema=schema, progress=progress, policy=targeting)
            for r in result["kinds"].values():
                truth = compare_with_truth(r, Path(data) / "truth.json", horizon)
                if truth:
                    r["truth"] = truth
        else:
            if cohort is None or not treatment or not outcome:
                raise EvaluationInputError("cohort", None, "--cohort, --treatment and --outcome (or --data)")
            if publish:
                raise EvaluationInputError("publish", True, "BIP mode only (effects by readiness band)")
            if policy:
                raise EvaluationInputError("policy", True, "BIP mode only (--data): decision points need the four tables")
            with progress_bar(quiet) as progress:
                result = evaluate(cohort=read_cohort(cohort), treatment=treatment, outcome=outcome,
                                  covariates=covariates.split(",") if covariates else None,
                                  subgroups=subgroups.split(",") if subgroups else None, design=design,
                                  estimand=estimand, seed=seed, progress=progress)
    except EvaluationInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    public = write_outputs(result, out, language=language)
    typer.echo(json.dumps(_summary(public), indent=2, ensure_ascii=False))
    typer.echo(f"wrote {out / 'evaluation.json'} and {out / 'report.html'}")
    if log:
        from evaluation.tracking import log_evaluation
        run_id = log_evaluation(result, publish=publish)
        typer.echo(f"MLflow run {run_id}" + (" (published)" if publish else ""))


def _summary(public: dict) -> dict:
    def one(r):
        if r.get("estimate") is None:
            return {"note": r.get("note")}
        return {**{k: r[k] for k in ("estimand", "estimate", "ci_low", "ci_high", "n_treated", "n_control")},
                "naive": r["naive"]["estimate"], "warnings": r["diagnostics"]["warnings"],
                **({"truth": r["truth"]} if "truth" in r else {})}
    if public.get("mode") == "bip":
        return {"kinds": {k: one(r) for k, r in public["kinds"].items()}, "seconds": public["timing"]["total_s"]}
    return {**one(public), "excluded_covariates": public.get("excluded_covariates", []), "design": public["design"]}


def publish_command(run_id: str = typer.Argument(..., help="The MLflow run id of an all-kinds BIP evaluation.")) -> None:
    """Mark an evaluation as published: its effects by readiness band go to the caseworker page."""
    from evaluation.estimate import EvaluationInputError
    from evaluation.tracking import publish_evaluation
    try:
        publish_evaluation(run_id)
    except EvaluationInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    typer.echo(f"published {run_id}")


def check_command(
    seeds: int = typer.Option(20, min=1, help="How many simulator seeds."),
    first_seed: int = typer.Option(100, help="The first seed."),
    persons: int = typer.Option(4000, min=200, help="Persons per simulated cohort."),
    out: Path = typer.Option(Path("data/evaluation_check.csv"), help="Per-seed rows."),
    workers: int = typer.Option(1, min=1, max=64, help="Seeds run at once, each in its own process."),
    limits: Path = typer.Option(None, help="Write the per-kind coverage here as known limits for the report "
                                "(evaluation/known_limits.json)."),
    policy: bool = typer.Option(False, help="Check the targeting rule (bip evaluate --policy) instead: its true "
                                "value against its interval, its true gain and regret."),
    capacity: str = typer.Option(None, help="With --policy: places per kind, e.g. mentor=300,loentilskud=0.05 "
                                 "(a number of decision points, or a share below 1)."),
    quiet: bool = QUIET,
) -> None:
    """Coverage and bias of the BIP-mode estimates against the simulator's true effects."""
    if policy:
        from evaluation.check import policy_check
        from evaluation.estimate import EvaluationInputError
        from evaluation.policy import check_policy_parameters, parse_capacity
        try:
            places = parse_capacity(capacity)
            check_policy_parameters([], places, 2)
        except EvaluationInputError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2)
        out = out if out != Path("data/evaluation_check.csv") else Path("data/policy_check.csv")
        out.parent.mkdir(parents=True, exist_ok=True)
        policy_check(list(range(first_seed, first_seed + seeds)), persons, str(out), workers, places,
                     limits=str(limits) if limits else None)
        return
    from evaluation.check import check_command as run
    run(seeds, first_seed, persons, str(out), workers, str(limits) if limits else None, quiet=quiet)

