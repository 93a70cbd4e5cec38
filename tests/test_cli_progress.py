"""Progress of the long commands on stderr (bip/progress.py), --quiet, and a stderr free of
library noise on a normal run. The commands run in a fresh interpreter, as a user runs them, so
Python warnings reach stderr instead of pytest's warning capture."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a small training run: one search candidate, one head
SMALL = {"BIP_SEARCH_GRID": "[[3, true]]", "BIP_HORIZONS": "[12]", "BIP_MAX_ROUNDS": "300", "OMP_NUM_THREADS": "1"}
STAGE_LINE = re.compile(r"^\[\s*\d+%\] \S")


def bip(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from cli.app import app; app()", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def normal_run(tmp_path_factory):
    """bip simulate and bip train --promote-if-better, stderr not a terminal, no --quiet."""
    folder = tmp_path_factory.mktemp("progress")
    env = {**os.environ, **SMALL, "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("BIP_PROGRESS", None)
    env.pop("PYTHONWARNINGS", None)
    simulated = bip("simulate", "--persons", "300", "--out", str(folder / "data"), env=env)
    trained = bip("train", "--data", str(folder / "data"), "--promote-if-better", env=env)
    return folder, env, simulated, trained


def test_a_normal_run_prints_one_line_per_stage_and_no_library_noise(normal_run):
    _, _, simulated, trained = normal_run
    for done in (simulated, trained):
        assert done.returncode == 0, done.stderr
        lines = done.stderr.splitlines()
        assert lines and all(STAGE_LINE.match(line) for line in lines), done.stderr  # nothing but stages
        assert "warning" not in done.stderr.lower() and "\x1b" not in done.stderr
        assert len(lines) == len(set(lines)) and lines[-1] == "[100%] done"
    assert "simulating 300 persons month by month" in simulated.stderr
    assert "true effect: loentilskud" in simulated.stderr
    assert "persons 300, jobcentres" in simulated.stdout  # the summary stays on stdout
    assert "xgboost search 1/1: depth 3, monotone, 12 months" in trained.stderr
    assert "logistic head: 12 months" in trained.stderr and "registering xgboost" in trained.stderr
    # MLflow's database creation, signature check, cloudpickle warning, registry prints: gone
    assert "INFO" not in trained.stderr and "Successfully registered" not in trained.stderr
    assert "registered bip-employment version 1" in trained.stdout
    assert "champion: version None -> 1" in trained.stdout


def test_quiet_writes_nothing_to_stderr(normal_run):
    folder, env, _, _ = normal_run
    scored = bip("score", "--data", str(folder / "data"), "--out", str(folder / "scores.parquet"), "-q", env=env)
    assert scored.returncode == 0 and scored.stderr == "", scored.stderr
    assert scored.stdout.startswith("scored 300 rows with model version 1 ->")
    evaluated = bip("evaluate", "--data", str(folder / "data"), "--kind", "loentilskud", "--no-log",
                    "--out", str(folder / "ev"), "--quiet", env=env)
    assert evaluated.returncode == 0 and evaluated.stderr == "", evaluated.stderr
    assert "wrote " in evaluated.stdout
    (folder / "taken").mkdir()
    (folder / "taken" / "notes.txt").write_text("not the simulator's")
    refused = bip("simulate", "--persons", "300", "--out", str(folder / "taken"), "-q", env=env)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")  # errors still print


def test_a_terminal_gets_a_progress_bar_and_stdout_stays_clean(normal_run):
    folder, env, _, _ = normal_run
    evaluated = bip("evaluate", "--data", str(folder / "data"), "--kind", "loentilskud", "--no-log",
                    "--out", str(folder / "ev_bar"), env={**env, "BIP_PROGRESS": "always"})
    assert evaluated.returncode == 0, evaluated.stderr
    assert "\x1b[" in evaluated.stderr  # drawn with rich's control codes
    assert "loentilskud: fitting propensity and outcome models" in evaluated.stderr
    assert "\x1b" not in evaluated.stdout and "wrote " in evaluated.stdout


def test_progress_bar_modes(capsys, monkeypatch):
    from bip.progress import progress_bar
    monkeypatch.delenv("BIP_PROGRESS", raising=False)
    with progress_bar() as progress:  # pytest's stderr is no terminal: a line per stage
        for fraction, message in ((0.0, "one"), (0.25, "one"), (0.5, "two"), (1.0, "done")):
            progress(fraction, message)
    assert capsys.readouterr().err == "[  0%] one\n[ 50%] two\n[100%] done\n"
    with progress_bar(quiet=True) as progress:
        progress(0.5, "one")
    monkeypatch.setenv("BIP_PROGRESS", "never")
    with progress_bar() as progress:
        progress(0.5, "one")
    assert capsys.readouterr().err == ""
