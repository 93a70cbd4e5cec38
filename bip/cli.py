"""The one `bip` command; each stage's subcommands live with their package."""

from __future__ import annotations

import functools

import typer

from evaluation.cli import check_command, evaluate_command, publish_command
from features.cli import db_app
from features.validation import ValidationError
from serving.cli import keys_app, serve_command
from simulation.cli import simulate_command
from training.cli import promote_command, runs_command, score_command, train_command

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="bip-score: explainable employment-likelihood scores from BIP measurements.")


def friendly(command):
    """Bad input (missing files, invalid tables) ends with the problem in words and exit code 2,
    not a traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (FileNotFoundError, ValidationError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2)
    return wrapper


app.command("simulate")(friendly(simulate_command))
app.command("train")(friendly(train_command))
app.command("runs")(runs_command)
app.command("promote")(promote_command)
app.command("score")(friendly(score_command))
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.command("evaluate")(friendly(evaluate_command))
app.command("evaluate-publish")(publish_command)
app.command("evaluate-check")(check_command)


@app.callback()
def main() -> None:
    """bip-score: explainable employment-likelihood scores from BIP measurements."""
