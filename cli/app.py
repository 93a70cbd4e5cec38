"""The one `bip` command: the composition root. Each stage's subcommands live with their package
(features/cli.py, training/cli.py, ...) and only this module imports them; nothing imports this."""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Optional

import typer

from evaluation.cli import check_command, evaluate_command, publish_command
from features.cli import db_app
from features.validation import ValidationError
from monitoring.cli import monitor_command
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
        except (FileNotFoundError, FileExistsError, ValidationError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2)
    return wrapper


def with_file_format(command):
    """Add --sep, --encoding and --date-format to a command that reads tables: CSV files in another
    format than the contract (comma, UTF-8, ISO 8601 dates) are read only when declared."""
    options = {
        "sep": typer.Option(None, "--sep", help="CSV separator when not ',' (e.g. ';' or tab)."),
        "encoding": typer.Option(None, "--encoding", help="CSV encoding when not UTF-8: cp1252 or latin-1."),
        "date_format": typer.Option(None, "--date-format",
                                    help="Dates when not ISO 8601: dd-mm-yyyy, dd.mm.yyyy, ... or a strptime format."),
    }

    @functools.wraps(command)
    def wrapper(*args, sep=None, encoding=None, date_format=None, **kwargs):
        from features.tables import FileFormat, declared_format
        try:
            fmt = FileFormat.declared(sep, encoding, date_format)
        except ValueError as error:
            raise typer.BadParameter(str(error))
        with declared_format(fmt):
            return command(*args, **kwargs)

    signature = inspect.signature(command)
    wrapper.__signature__ = signature.replace(parameters=[
        *signature.parameters.values(),
        *(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[str])
          for name, option in options.items())])
    wrapper.__annotations__ = {**getattr(command, "__annotations__", {}),
                               **{name: Optional[str] for name in options}}
    return wrapper


app.command("simulate")(friendly(simulate_command))
app.command("train")(friendly(with_file_format(train_command)))
app.command("runs")(runs_command)
app.command("promote")(promote_command)
app.command("score")(friendly(with_file_format(score_command)))
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.command("evaluate")(friendly(with_file_format(evaluate_command)))
app.command("evaluate-publish")(publish_command)
app.command("evaluate-check")(check_command)
app.command("monitor")(friendly(monitor_command))


# Libraries' own chatter on a normal run, dropped by logger, level and the start of the message
# (anything else from these loggers, and every warning, still shows). A new line on stderr after
# an upgrade: add it here only when it is the library's noise, not something to fix in our code.
LIBRARY_NOISE = {
    "mlflow.store.db.utils": [(logging.INFO, "Creating initial MLflow database tables"),
                              (logging.INFO, "Updating database tables")],
    # we log the model as a Python object (cloudpickle) on purpose: the registry holds the whole
    # ScoringModel; models-from-code would need a loader module and a new artifact layout
    "mlflow.pyfunc": [(logging.INFO, "Validating input example against model signature"),
                      (logging.WARNING, "Passing a Python object as `python_model` causes it to be serialized")],
}


class _DropLibraryNoise(logging.Filter):
    def __init__(self, known: list[tuple[int, str]]):
        super().__init__()
        self.known = known

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(record.levelno == level and message.startswith(start) for level, start in self.known)


def quiet_library_noise() -> None:
    """Install the LIBRARY_NOISE filters once (the commands call this before any work)."""
    for name, known in LIBRARY_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLibraryNoise) for f in logger.filters):
            logger.addFilter(_DropLibraryNoise(known))


@app.callback()
def main() -> None:
    """bip-score: explainable employment-likelihood scores from BIP measurements."""
    quiet_library_noise()
