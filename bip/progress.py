"""Progress of the long commands (simulate, train, evaluate, evaluate-check, score) on stderr.

Library functions take an optional `progress(fraction, message)` callback (fraction in [0, 1],
message the stage now running) and never import rich; the commands open `progress_bar()` around
the work and print their summary to stdout after it closes, so stdout stays clean for piping.

On a terminal: a rich progress bar (rich comes with Typer), erased when the work ends. Not on a
terminal (CI, a pipe, a log file): one plain line per stage, `[ 40%] message`, no control codes.
`--quiet` (or BIP_PROGRESS=never) prints nothing; BIP_PROGRESS=always draws the bar even when
stderr is not a terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator

import typer

Progress = Callable[[float, str], None]

QUIET = typer.Option(False, "--quiet", "-q", help="No progress on stderr (errors still print).")


def silent(fraction: float, message: str) -> None:
    """The callback that reports nothing."""


@contextlib.contextmanager
def progress_bar(quiet: bool = False) -> Iterator[Progress]:
    """A progress(fraction, message) callback drawing on stderr until the block ends."""
    mode = os.environ.get("BIP_PROGRESS", "auto").lower()
    if quiet or mode == "never":
        yield silent
        return
    from rich.console import Console
    console = Console(stderr=True, force_terminal=True if mode == "always" else None)
    if not console.is_terminal:
        yield _stage_lines()
        return
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar
    # stdout is left alone (no redirection through the live display): it is the command's output
    with Bar(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
             console=console, transient=True, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task("starting", total=1.0)
        last = None

        def update(fraction: float, message: str) -> None:
            nonlocal last
            bar.update(task, completed=min(max(fraction, 0.0), 1.0), description=message,
                       refresh=message != last)  # every stage is drawn at least once
            last = message
        yield update


def _stage_lines() -> Progress:
    """One line per stage (not per update) for logs."""
    last = None

    def line(fraction: float, message: str) -> None:
        nonlocal last
        if message != last:
            last = message
            sys.stderr.write(f"[{100 * fraction:3.0f}%] {message}\n")
            sys.stderr.flush()
    return line
