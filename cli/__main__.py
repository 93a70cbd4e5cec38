"""`python -m cli ...` runs the same command as the `bip` console script."""

from cli.app import app

app(prog_name="bip")
