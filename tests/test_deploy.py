"""The deployable stack: compose.yaml, deploy/, the Dockerfile and the lock. No Docker engine runs in
CI, so the files are checked for what the running stack depends on, and the database set-up script
runs against the suite's own PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from bip.config import Settings

ROOT = Path(__file__).resolve().parents[1]
STACK = {"postgres", "mlflow", "service", "prometheus"}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_compose_runs_postgres_mlflow_on_it_the_service_and_prometheus(compose):
    services = compose["services"]
    assert STACK <= set(services)
    mlflow, service = environment(services["mlflow"]), environment(services["service"])
    assert mlflow["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in mlflow["MLFLOW_BACKEND_STORE_URI"]
    # artifacts on a named volume, mounted where the server writes them
    artifacts = mlflow["MLFLOW_ARTIFACTS_DESTINATION"]
    mounts = dict(v.split(":")[:2][::-1] for v in services["mlflow"]["volumes"])
    assert mounts[artifacts] in compose["volumes"]
    assert service["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "mlflow" in mlflow["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")  # MLflow refuses unknown Host headers
    assert re.match(r"postgresql\+psycopg://citizen_reader:.*@postgres:5432/citizens$", service["BIP_CITIZEN_SOURCE"])
    for name, spec in services.items():
        for needed in spec.get("depends_on", []):
            assert needed in services, (name, needed)
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") and (ROOT / source).exists() or source in compose["volumes"], volume


def test_compose_configures_only_through_environment_variables(compose):
    fields = set(Settings.model_fields)
    for name, spec in compose["services"].items():
        for variable, value in environment(spec).items():
            if variable.startswith("BIP_"):  # each one is a setting the service reads
                assert variable[len("BIP_"):].lower() in fields, variable
            if "PASSWORD" in variable or "://" in str(value) and "@" in str(value):
                # secrets come from the environment of `docker compose`, never from this file
                assert "${" in str(value) or variable == "MLFLOW_TRACKING_URI", (name, variable)
    service = compose["services"]["service"]
    assert [v.split(":")[1] for v in service["volumes"]] == ["/app/var"]  # state only; no config files mounted


def test_prometheus_scrapes_the_service_metrics(compose):
    mount = next(v for v in compose["services"]["prometheus"]["volumes"] if v.endswith("prometheus.yml:ro"))
    config = yaml.safe_load((ROOT / mount.split(":")[0]).read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "bip-score")
    assert job["metrics_path"] == "/metrics"
    port = compose["services"]["service"]["ports"][0].rsplit(":", 1)[1]
    assert job["static_configs"][0]["targets"] == [f"service:{port}"]


def test_image_is_healthy_only_when_ready_and_installs_cpu_only_xgboost():
    dockerfile = (ROOT / "Dockerfile").read_text()
    check = dockerfile[dockerfile.index("HEALTHCHECK"):].split("\nCMD", 1)[0]
    assert "/ready" in check and "/health'" not in check
    assert "COPY requirements.lock" in dockerfile and "pip install -r requirements.lock" in dockerfile
    pins = dict(line.split("==") for line in (ROOT / "requirements.lock").read_text().split() if "==" in line)
    assert "xgboost-cpu" in pins and "xgboost" not in pins
    assert not [name for name in pins if name.startswith("nvidia-")]


def test_postgres_init_script_gives_the_service_a_read_only_reader(postgres, small_cohort_dir):
    """deploy/postgres-init.sh, as the postgres image runs it, against the suite's PostgreSQL."""
    import sqlalchemy as sa
    from typer.testing import CliRunner

    from cli.app import app
    from features.sources import SqlCitizenSource
    from tests.conftest import _postgres_bindir

    env = {**os.environ, "POSTGRES_USER": "bip", "POSTGRES_DB": "postgres", "CITIZEN_READER_PASSWORD": "reader-pw",
           "PGHOST": "127.0.0.1", "PGPORT": str(postgres.port),
           "PATH": f"{_postgres_bindir()}:{os.environ.get('PATH', '')}"}
    done = subprocess.run(["sh", str(ROOT / "deploy" / "postgres-init.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    owner = postgres.url("citizens")
    loaded = CliRunner().invoke(app, ["db", "load", "--data", str(small_cohort_dir), "--url", owner])
    assert loaded.exit_code == 0, loaded.output
    reader = owner.replace("//bip@", "//citizen_reader:reader-pw@")
    source = SqlCitizenSource(reader)
    assert len(source.listing(limit=5)) == 5
    source.close()
    engine = sa.create_engine(reader)  # a plain engine: the role itself must refuse writes
    with engine.connect() as connection:
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction|permission denied"):
            connection.execute(sa.text("DELETE FROM outcomes"))
    with engine.connect() as connection:
        connection.execute(sa.text("SET TRANSACTION READ WRITE"))  # lifts read-only, not the grants
        with pytest.raises(sa.exc.DBAPIError, match="permission denied"):
            connection.execute(sa.text("DELETE FROM outcomes"))
    engine.dispose()
