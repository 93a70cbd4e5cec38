"""Shared fixtures: one small simulated cohort per test session."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features.contract import TABLES
from features.schema import load_schema


@pytest.fixture(scope="session")
def schema():
    return load_schema()


@pytest.fixture(scope="session")
def small_cohort_dir(tmp_path_factory):
    from simulation.simulate import simulate

    out = tmp_path_factory.mktemp("cohort")
    summary = simulate(persons=600, seed=11, out=out, paths=16, effect_paths=24)
    (out / "summary.json").write_text(json.dumps(summary))
    return out


@pytest.fixture(scope="session")
def small_tables(small_cohort_dir):
    return {name: pd.read_parquet(small_cohort_dir / f"{name}.parquet") for name in TABLES}


@pytest.fixture()
def tables(small_tables):
    """A fresh copy that a test may change."""
    return {name: table.copy() for name, table in small_tables.items()}


@pytest.fixture(scope="session")
def serving_store(tmp_path_factory, small_cohort_dir):
    """A store with a trained champion (version 1), for the service tests."""
    import os
    folder = tmp_path_factory.mktemp("serving_mlruns")
    uri = f"sqlite:///{folder}/mlflow.db"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    from training.train import train
    summary = train(small_cohort_dir, "xgboost", 12, promote_if_better=True, seed=7)
    assert summary["promoted"], (summary["registered_version"], summary.get("champion_log_loss_same_data"), uri)
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


# ---------------------------------------------------------------- PostgreSQL, started by the suite itself

class PostgresServer:
    """A throw-away PostgreSQL cluster: superuser `bip`, trust auth, TCP on 127.0.0.1:port and a
    unix socket in its own folder."""

    def __init__(self, folder, port: int):
        self.folder, self.port = folder, port

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one database (psycopg 3 driver)."""
        return f"postgresql+psycopg://bip@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg
        with psycopg.connect(host="127.0.0.1", port=self.port, user="bip", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _postgres_bindir():
    """Debian's PostgreSQL binaries, the newest major version installed."""
    from pathlib import Path
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0) if found else None


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server started from Debian's package in a temporary folder on a free port;
    installs nothing (.ci/run and `make test` install the package), skips with the reason if absent."""
    import os
    import pwd
    import shutil
    import signal
    import subprocess
    import tempfile
    import time
    from pathlib import Path

    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                    "apt-get install postgresql, as .ci/run and make test do")
    user = {}
    folder = Path(tempfile.mkdtemp(prefix="bip-postgres-"))
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root: run them as Debian's postgres user
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
        os.chown(folder, account.pw_uid, account.pw_gid)
        user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data, log = folder / "data", folder / "postgres.log"
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "bip", "--auth=trust", "-E", "UTF8",
                    "--no-sync", "--no-instructions"], check=True, capture_output=True, cwd=folder, **user)
    port = _free_port()
    with open(log, "wb") as out:
        server = subprocess.Popen([str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
                                   "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                   "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
                                  stdout=out, stderr=subprocess.STDOUT, cwd=folder, **user)
    try:
        import psycopg
        deadline = time.monotonic() + 120
        while True:
            try:
                psycopg.connect(host="127.0.0.1", port=port, user="bip", dbname="postgres", connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield PostgresServer(folder, port)
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown: ends open sessions rather than waiting for them
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _serving_store_before_any_monkeypatch(serving_store):
    """The store is made before any test patches MLFLOW_TRACKING_URI: made lazily inside such a test,
    it would remember the patched value as the one to restore, and the patch's undo would point every
    later test at the wrong store."""
    return serving_store


@pytest.fixture(autouse=True)
def _chosen_settings_restored():
    """create_app makes its settings the process-wide ones (use_settings); a test that builds an app
    would otherwise leave them to every later test (a stopped Dask cluster's address, another jobs
    folder). Fixtures of wider scope are set up before this one, so theirs stay in force."""
    import bip.config as config
    before = config._chosen
    yield
    config.use_settings(before)
