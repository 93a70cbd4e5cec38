"""The import contracts in pyproject.toml ([tool.importlinter]): the command line on top, the shared
core (bip.config, bip.progress) at the bottom, the stages in between, imports running one way.

The checker runs on this tree (it must pass) and on copies with one import added (each must fail,
naming the offending import), so a contract that silently stopped checking would be noticed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH first: the packages of `tree` are the ones analysed, not the installed checkout
    env = {**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1", "COLUMNS": "300"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


def test_every_package_is_under_contract():
    """A new top-level package must be placed in the layers, or nothing checks its imports."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == set(CONFIG["root_packages"])
    layered = {name.strip() for layer in CONFIG["contracts"][0]["layers"] for name in layer.split("|")}
    assert layered == packages


def test_imports_run_one_way():
    result = lint_imports(ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in output


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The packages and pyproject.toml, copied; each case edits one file and restores it."""
    tree = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", tree)
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tree


@pytest.mark.parametrize("module, added, broken, shown", [
    # a stage importing the command line (inside a function, where it is easiest to slip in)
    ("features/build.py", "def _cli():\n    from cli.app import app\n    return app\n",
     "Imports run one way", "features.build -> cli.app"),
    ("bip/config.py", "import cli.app\n", "Imports run one way", "bip.config -> cli.app"),
    # an upward import between stages
    ("models/scoring.py", "import training.train\n", "Imports run one way", "models.scoring -> training.train"),
    # siblings in one layer import each other only through a layer below
    ("evaluation/run.py", "import training.pipeline\n", "Imports run one way", "evaluation.run -> training.pipeline"),
    # one stage reaching into another's subcommands
    ("serving/work.py", "import training.cli\n", "wired by the command line only", "serving.work -> training.cli"),
    # the circle this contract was written for
    ("features/validation.py", "def _line():\n    from features.tables import read_table\n    return read_table\n",
     "No import circles", "- .validation -> .tables (1 import)"),
])
def test_contract_breaks_on_a_wrong_import(tree_copy, module, added, broken, shown):
    path = tree_copy / module
    original = path.read_text()
    try:
        path.write_text(original + "\n\n" + added)
        result = lint_imports(tree_copy)
    finally:
        path.write_text(original)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    broken_line = next(line for line in output.splitlines() if broken in line and line.endswith(("KEPT", "BROKEN")))
    assert broken_line.endswith("BROKEN"), output
    assert shown in output, output


def test_every_package_ships():
    """The wheel and the image carry every package (no Docker engine here to find a missing one)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = {name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in CONFIG["root_packages"]:
        assert package in included, package
        assert f"COPY {package} ./{package}\n" in dockerfile, package
    assert project["project"]["scripts"]["bip"] == "cli.app:app"
