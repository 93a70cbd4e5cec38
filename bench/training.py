"""`bip train` wall time and peak memory on the default cohort and on 200,000 persons.

    .venv/bin/python bench/training.py [--persons 4000 200000]

Each run is a fresh `bip train` process (cross-validation, both models, MLflow logging) measured
with /usr/bin/time -v, against a throwaway MLflow store. Cohorts are simulated once (tables
only) into var/.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, nargs="+", default=[4000, 200_000])
    args = parser.parse_args()
    print(f"{'persons':>8s} {'examples':>9s} {'wall s':>8s} {'peak GiB':>9s}")
    for persons in args.persons:
        folder = ROOT / "var" / f"bench_cohort_{persons}"
        if not (folder / "persons.parquet").exists():
            subprocess.run([str(BIN / "bip"), "simulate", "--persons", str(persons), "--seed", "11", "--out", str(folder),
                            "--no-truth"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        store = tempfile.mkdtemp()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db"}
        done = subprocess.run(["/usr/bin/time", "-v", str(BIN / "bip"), "train", "--data", str(folder)],
                              capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode != 0:
            sys.exit(done.stderr[-2000:])
        wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
        seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
        peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 2**20
        counts = re.search(r"examples: (\d+) training \((\d+) in the cross-validation search\), (\d+)", done.stdout)
        n = int(counts.group(1)) + int(counts.group(3)) if counts else -1
        print(f"{persons:8d} {n:9d} {seconds:8.0f} {peak:9.2f}")


if __name__ == "__main__":
    main()
