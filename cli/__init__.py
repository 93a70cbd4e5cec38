"""The composition root: the one `bip` command (cli.app), which wires every stage's subcommands.

Nothing imports this package but the console script and the tests; each stage sits below it,
and the shared core (bip.config, bip.progress) at the bottom (see the layers in pyproject.toml).
"""
