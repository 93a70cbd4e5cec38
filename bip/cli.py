"""The one `bip` command; each stage's subcommands live with their package."""

from __future__ import annotations

import typer

from evaluation.cli import check_command, evaluate_command
from serving.cli import keys_app, serve_command
from simulation.cli import simulate_command
from training.cli import promote_command, runs_command, score_command, train_command

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="bip-score: explainable employment-likelihood scores from BIP measurements.")
app.command("simulate")(simulate_command)
app.command("train")(train_command)
app.command("runs")(runs_command)
app.command("promote")(promote_command)
app.command("score")(score_command)
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.command("evaluate")(evaluate_command)
app.command("evaluate-check")(check_command)


@app.callback()
def main() -> None:
    """bip-score: explainable employment-likelihood scores from BIP measurements."""
