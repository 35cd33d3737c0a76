"""The Lambda asset is self-contained: built for this machine's architecture, its job and migrate
handlers run from the asset alone, with CPython 3.13 (Lambda's) and nothing else importable but
boto3 (which the runtime provides); Secrets Manager from moto's server on loopback, the database
from the embedded Postgres. The asset's shipped bytecode is used as is: nothing is compiled."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import boto3
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from cdk import bundling
from shared import cron
from shared.db import connect
from shared.migrations import discover, discover_app, migrate
from shared.registry import JOBS

ROOT = Path(__file__).resolve().parents[2]
#: Every job's latest occurrence at this moment (in the past, so a manual as_of is accepted).
NOW = datetime(2026, 11, 28, 23, 59, tzinfo=UTC)


@pytest.fixture(scope="module")
def asset() -> Path:
    return bundling.build_asset(install_dependencies=True, architecture=bundling.local_architecture())


@pytest.fixture(scope="module")
def boto3_only() -> Path:
    """boto3 and its dependencies alone, as the Lambda runtime has them (built once, reused)."""
    return bundling.runtime_provided()


@pytest.fixture
def secrets_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.rglob("*")}


def test_the_asset_runs_every_job_and_the_migrations_on_its_own(asset, boto3_only, secrets_endpoint, empty_db_url):
    # Given the connection URL in Secrets Manager (moto's server on loopback)
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": secrets_endpoint,
    }
    client = boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=secrets_endpoint, **_keys(aws))
    arn = client.create_secret(Name="scheduled-jobs/db", SecretString=as_url(empty_db_url))["ARN"]
    # And the app's tables there (the reference app schema; the deploy migrates the jobs layer only)
    app = connect(empty_db_url)
    try:
        migrate(app, discover_app())
    finally:
        app.close()
    plan = {"jobs": [[job.name, cron.previous_fire_time(job.cron, NOW).isoformat()] for job in JOBS]}
    before = snapshot(asset)
    # When CPython 3.13, isolated (no site-packages, no PYTHONPATH), runs the handlers from the asset
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_SECRET_ARN": arn,
        "DATABASE_SECRET_CREATED_BY_STACK": "false",
        "POWERTOOLS_SERVICE_NAME": "scheduled-jobs",
        "POWERTOOLS_METRICS_NAMESPACE": "LangexScheduledJobs",
        **aws,
    }
    python = bundling.find_python313()
    script = Path(__file__).with_name("asset_run.py")
    done = subprocess.run(
        [str(python), "-I", "-S", str(script), str(asset), str(boto3_only), json.dumps(plan)],
        cwd=asset,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    # Then nothing but the asset, boto3 and the standard library was importable, or imported
    stdlib = sys_prefix(python)
    allowed = (str(asset), str(boto3_only), stdlib)
    assert all(entry.startswith(allowed) and "site-packages" not in entry for entry in result["path"]), result["path"]
    outside = [m for m in result["modules"] if not m.startswith(allowed) and m != str(script)]
    assert outside == []
    assert any(module.startswith(str(asset) + "/psycopg") for module in result["modules"])
    # And the migrations were applied, then every job succeeded and logged its row
    assert result["migrate"]["Data"] == {"Applied": str(len(discover())), "Status": "migrated"}
    assert {name: run["status"] for name, run in result["runs"].items()} == {job.name: "succeeded" for job in JOBS}
    with psycopg.connect(empty_db_url) as conn:
        rows = conn.execute("SELECT job_name, status, trigger FROM cron_job_logs ORDER BY id").fetchall()
    assert rows == [(job.name, "succeeded", "manual") for job in JOBS]
    # And the asset was only read: its bytecode was used as shipped, nothing compiled or written
    assert snapshot(asset) == before


def as_url(conninfo: str) -> str:
    """The test database's connection string as the URL a secret holds."""
    params = conninfo_to_dict(conninfo)
    user, host, port = params.get("user", "postgres"), params["host"], params.get("port", 5432)
    return f"postgresql://{user}@/{params['dbname']}?host={host}&port={port}"


def _keys(aws: dict[str, str]) -> dict[str, str]:
    return {"aws_access_key_id": aws["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": aws["AWS_SECRET_ACCESS_KEY"]}


def sys_prefix(python: Path) -> str:
    return subprocess.run(
        [str(python), "-I", "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True, check=True
    ).stdout.strip()
