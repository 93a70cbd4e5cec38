"""`bip db load`: the contract tables into a SQL database, for the citizen source (tests and demos)."""

from __future__ import annotations

from pathlib import Path

import typer

db_app = typer.Typer(add_completion=False, no_args_is_help=True,
                     help="The citizen database (the data contract's tables in SQL).")


@db_app.command("load")
def load_command(
    data: Path = typer.Option(..., help="Folder with the contract tables (Parquet or CSV), e.g. bip simulate's."),
    url: str = typer.Option(None, help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host:5432/citizens "
                            "(default: BIP_CITIZEN_SOURCE when that is a URL; a password is better kept there "
                            "than on the command line)."),
    schema: Path = typer.Option(None, help="Indicator schema TOML (default: BIP's 11)."),
    replace: bool = typer.Option(False, help="Drop the contract tables first (otherwise a database that "
                                 "already holds persons is refused)."),
) -> None:
    """Validate the tables in DATA and write them into the database at URL."""
    import sqlalchemy as sa

    from bip.config import get_settings
    from features.schema import load_schema
    from features.sources import load_tables
    from features.tables import load_and_validate

    url = url or get_settings().citizen_source
    if not url or "://" not in str(url):
        raise typer.BadParameter(f"{url!r}: a database URL (scheme://...) is needed", param_hint="--url")
    try:
        tables, indicator_schema = load_and_validate(data, load_schema(schema))
        written = load_tables(tables, str(url), indicator_schema, replace=replace)
    except (FileNotFoundError, ValueError) as error:  # ValidationError is a ValueError: every problem listed
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    except sa.exc.ArgumentError as error:  # an unknown scheme or driver
        typer.echo(f"error: --url: {error}", err=True)
        raise typer.Exit(2)
    except sa.exc.OperationalError as error:  # the message would carry the URL; the kind is enough
        typer.echo(f"error: cannot write to {sa.make_url(str(url))!r}: {type(error.orig).__name__}: "
                   f"{str(error.orig).splitlines()[0]}", err=True)
        raise typer.Exit(2)
    typer.echo(", ".join(f"{rows} {name}" for name, rows in written.items())
               + f" written to {sa.make_url(str(url))!r}")
