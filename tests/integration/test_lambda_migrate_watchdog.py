"""The migrate (custom resource) and watchdog Lambda entry points, against a real Postgres."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from functions import migrate, watchdog
from shared import registry
from shared.contract import ContractError
from shared.db import connect, get_connection, reset_connection
from shared.errors import ConfigError, DatabaseUnavailable
from shared.migrations import discover, discover_app
from shared.migrations import migrate as run_migrations
from shared.naming import SECRET_PLACEHOLDER
from tests.factories import lambda_context

MIGRATE = "scheduled-jobs-migrate"
WATCHDOG = "scheduled-jobs-watchdog"


@pytest.fixture
def database(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    def use(url: str | None, secret_arn: str | None = None, created_by_stack: bool = False) -> None:
        for name, value in (("DATABASE_URL", url), ("DATABASE_SECRET_ARN", secret_arn)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        monkeypatch.setenv("DATABASE_SECRET_CREATED_BY_STACK", "true" if created_by_stack else "false")
        reset_connection()
        parameters.clear_caches()

    yield use
    reset_connection()


def cfn_event(request_type: str) -> dict:
    event = {
        "RequestType": request_type,
        "ResourceType": "Custom::SchemaMigrations",
        "ResourceProperties": {"SqlHash": "x"},
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = migrate.PHYSICAL_ID
    return event


def test_a_database_that_misses_the_contract_fails_the_deploy_and_is_left_untouched(database, empty_db_url):
    # Given a database without the app's tables
    database(empty_db_url)
    # When CloudFormation creates the resource, the deploy fails with every gap
    with pytest.raises(ContractError, match=r"users: table missing \(needed by "):
        migrate.handler(cfn_event("Create"), lambda_context(MIGRATE, remaining_s=60))
    # And nothing was changed
    assert get_connection().execute("SELECT to_regclass('schema_migrations') AS t").fetchone()["t"] is None


def test_create_migrates_an_empty_database_and_update_then_has_nothing_to_do(database, empty_db_url):
    # Given a database with the app's tables and no jobs layer yet
    with connect(empty_db_url) as app:
        run_migrations(app, discover_app())
    database(empty_db_url)
    # When CloudFormation creates the resource
    created = migrate.handler(cfn_event("Create"), lambda_context(MIGRATE, remaining_s=60))
    # Then every migration is applied, and recorded
    assert created == {
        "PhysicalResourceId": "schema-migrations",
        "Data": {"Applied": str(len(discover())), "Status": "migrated"},
    }
    versions = {r["version"] for r in get_connection().execute("SELECT version FROM schema_migrations").fetchall()}
    assert versions == {m.version for m in discover()} | {m.version for m in discover_app()}
    # And a later deploy (Update) with no SQL change applies nothing, keeping the same physical id
    assert migrate.handler(cfn_event("Update"), lambda_context(MIGRATE, remaining_s=60)) == {
        "PhysicalResourceId": "schema-migrations",
        "Data": {"Applied": "0", "Status": "migrated"},
    }


def test_delete_touches_nothing(database):
    # Given a database that cannot even be reached
    database("postgresql://nobody:nothing@127.0.0.1:9/none?connect_timeout=1")
    # Then deleting the stack still succeeds, without a connection
    assert migrate.handler(cfn_event("Delete"), lambda_context(MIGRATE, remaining_s=60)) == {
        "PhysicalResourceId": "schema-migrations"
    }


@mock_aws
def test_a_stack_created_secret_not_yet_filled_in_lets_the_first_deploy_finish(database):
    # Given the secret the stack just created, still holding its placeholder
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = client.create_secret(Name="jobs-db", SecretString=SECRET_PLACEHOLDER)["ARN"]
    database(None, secret_arn=arn, created_by_stack=True)
    # Then Create succeeds and says the migrations wait for the secret
    result = migrate.handler(cfn_event("Create"), lambda_context(MIGRATE, remaining_s=60))
    assert result["Data"] == {"Applied": "0", "Status": "secret-not-filled-in"}
    # While the same secret given by the operator fails the deploy (next test): the flag decides


@mock_aws
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("generated-value-AbC123", ConfigError, "neither a postgresql:// URL nor JSON"),
        (SECRET_PLACEHOLDER, None, None),
        ("postgresql://jobs:pw-x1@127.0.0.1:9/app?connect_timeout=1", DatabaseUnavailable, "could not be reached"),
        (None, ConfigError, "could not read the database secret"),
    ],
    ids=["not-the-placeholder", "placeholder", "unreachable", "unreadable"],
)
def test_a_stack_created_secret_fails_the_deploy_unless_it_holds_the_placeholder(database, value, error, message):
    # Given the stack-created secret holding anything but its placeholder (or not readable at all)
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    if value is None:
        arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobs-db-AbCdEf"
    else:
        arn = client.create_secret(Name="jobs-db", SecretString=value)["ARN"]
    database(None, secret_arn=arn, created_by_stack=True)
    # Then the deploy fails with the reason (only the exact placeholder lets it through)
    if error is None:
        assert (
            migrate.handler(cfn_event("Update"), lambda_context(MIGRATE, remaining_s=60))["Data"]["Status"]
            == "secret-not-filled-in"
        )
        return
    with pytest.raises(error, match=message):
        migrate.handler(cfn_event("Update"), lambda_context(MIGRATE, remaining_s=60))


@mock_aws
def test_an_operator_secret_that_is_wrong_fails_the_deploy(database):
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = client.create_secret(Name="jobs-db", SecretString="not a url")["ARN"]
    database(None, secret_arn=arn, created_by_stack=False)
    with pytest.raises(ConfigError, match="neither a postgresql:// URL nor JSON"):
        migrate.handler(cfn_event("Update"), lambda_context(MIGRATE, remaining_s=60))


def test_watchdog_handler_reports_missed_runs_and_emits_metrics(database, db_url, conn, capsys):
    # Given a database deployed long ago where nothing has run, and a check with 60 s left
    conn.execute("UPDATE schema_migrations SET applied_at = '2020-01-01'")
    database(db_url)
    # When the watchdog runs now
    result = watchdog.handler(
        {"source": "aws.events", "time": "2026-11-28T12:00:00Z"}, lambda_context(WATCHDOG, remaining_s=60)
    )
    # Then the older occurrences of the non-superseding jobs are reported missed, the recent ones are
    # left for a check with time enough to run them, and each job has a metric line, plus the heartbeat
    assert result["checked"] == len(registry.JOBS)
    superseding = {job.name for job in registry.JOBS if job.catchup_latest_only}
    assert {m["job"] for m in result["missed"]} == set(registry.BY_NAME) - superseding
    assert {c["status"] for c in result["caught_up"]} == {"later"}
    assert {c["job"] for c in result["caught_up"]} >= superseding
    out = capsys.readouterr().out
    assert out.count('"MissedRuns"') >= len(registry.JOBS)
    assert '"WatchdogChecks"' in out
    assert conn.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 0


def test_watchdog_handler_catches_up_each_job_with_its_own_metrics(database, db_url, conn, capsys):
    # Given a database first deployed two hours ago, where nothing has run since
    conn.execute("UPDATE schema_migrations SET applied_at = now() - interval '2 hours'")
    database(db_url)
    # When the watchdog runs with time enough
    result = watchdog.handler({}, lambda_context(WATCHDOG, remaining_s=900))
    # Then each occurrence due since then ran once, with trigger catchup ...
    assert result["caught_up"] and {c["status"] for c in result["caught_up"]} == {"succeeded"}
    rows = conn.execute("SELECT job_name, as_of, trigger, status FROM cron_job_logs").fetchall()
    assert {(r["job_name"], r["trigger"], r["status"]) for r in rows} == {
        (c["job"], "catchup", "succeeded") for c in result["caught_up"]
    }
    assert len(rows) == len(result["caught_up"]) and result["missed"] == []
    # ... and each run's metrics were flushed under its own job
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"RunsSucceeded"' in line]
    assert sorted(b["job"] for b in blobs) == sorted(c["job"] for c in result["caught_up"])


def test_watchdog_handler_replaces_a_connection_gone_stale_between_invocations(database, db_url, embedded_server):
    if embedded_server is None:
        pytest.skip("needs the embedded server to restart")
    # Given a warm watchdog whose connection died with a server restart since its last check
    database(db_url)
    watchdog.handler({}, lambda_context(WATCHDOG, remaining_s=60))
    stale = get_connection()
    embedded_server.restart()
    # When it checks again, it reconnects once and the check completes
    result = watchdog.handler({}, lambda_context(WATCHDOG, remaining_s=60))
    assert result["checked"] == len(registry.JOBS)
    assert get_connection() is not stale and stale.closed
