"""`bip simulate`."""

from __future__ import annotations

from pathlib import Path

import typer

from bip.progress import QUIET, progress_bar

app = typer.Typer(add_completion=False)


@app.command("simulate")
def simulate_command(
    persons: int = typer.Option(4000, min=1, help="Number of citizens."),
    seed: int = typer.Option(7, help="Random seed; the same seed gives the same files."),
    out: Path = typer.Option(Path("data/bip"), help="Output folder."),
    schema: Path = typer.Option(None, help="Indicator schema TOML (default: BIP's 11)."),
    paths: int = typer.Option(32, min=2, help="Forward paths per occasion for the true probabilities."),
    truth: bool = typer.Option(True, help="Compute the ground truth (--no-truth: tables only, for scale tests)."),
    regime: str = typer.Option("default", help="'default' (the kind world) or 'realistic' (a hidden trait, a "
                               "non-additive hazard, forms missing not at random, rater effects)."),
    quiet: bool = QUIET,
) -> None:
    """Simulate a synthetic BIP cohort with known ground truth."""
    from features.schema import load_schema
    from simulation.params import REGIMES
    from simulation.simulate import simulate

    if regime not in REGIMES:
        raise typer.BadParameter(f"{regime!r}; allowed: {', '.join(REGIMES)}", param_hint="--regime")
    with progress_bar(quiet) as progress:
        summary = simulate(persons=persons, seed=seed, out=out, schema=load_schema(schema), paths=paths, truth=truth,
                           progress=progress, regime=regime)
    typer.echo(format_summary(summary) if truth else f"wrote {summary['persons']} persons, "
               f"{summary['measurement_rows']} measurement rows to {out} (no truth)")


def format_summary(s: dict) -> str:
    pct = lambda x: f"{100 * x:5.1f}%"  # noqa: E731
    rows = [
        f"persons {s['persons']}, jobcentres {s['jobcentres']}, caseworkers {s['caseworkers']}",
        f"measurement occasions {s['measurement_occasions']} ({s['occasions_per_person']:.2f} per person), "
        f"rows {s['measurement_rows']}",
        f"persons with at least one caseworker change: {pct(s['share_with_caseworker_change'])}  (BIP: 40%)",
        "",
        f"{'12-month job or education, per occasion':52s} {'observed':>9s} {'truth':>9s}  BIP",
        f"{'  all occasions (n=' + str(s['occasions_12m_observed']) + ')':52s} {pct(s['job_12m_observed']):>9s} "
        f"{pct(s['job_12m_truth']):>9s}  ~6%",
        f"{'  caseworker believes in a job (top of scale)':52s} {pct(s['job_12m_when_caseworker_believes_observed']):>9s} "
        f"{pct(s['job_12m_when_caseworker_believes_truth']):>9s}  ~27%",
        f"{'  caseworker doubts (two lowest steps)':52s} {pct(s['job_12m_when_caseworker_doubts_observed']):>9s} "
        f"{pct(s['job_12m_when_caseworker_doubts_truth']):>9s}  ~1%",
        "",
        "caseworker belief answers: " + ", ".join(f"{k}: {pct(v)}" for k, v in s["belief_share"].items())
        + "  (BIP: ~6% yes, 20% good chances, half doubt or no)",
        f"optimistic vs pessimistic caseworker, 12-month risk ratio (truth): "
        f"{s['optimism_risk_ratio_truth']:.2f}  (BIP: 1.32)",
        f"after a caseworker change, 12-month risk ratio (truth): {s['caseworker_change_risk_ratio_truth']:.2f}  (BIP: 0.78)",
        "true effect on the treated of starting, 12-month job chance (percentage points): "
        + ", ".join(f"{k} {100 * v:+.1f}" for k, v in s["intervention_att_12m_truth"].items() if v is not None),
    ]
    return "\n".join(rows)
