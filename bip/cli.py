"""The one `bip` command; each stage's subcommands live with their package."""

from __future__ import annotations

import typer

from simulation.cli import simulate_command

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="bip-score: explainable employment-likelihood scores from BIP measurements.")
app.command("simulate")(simulate_command)
