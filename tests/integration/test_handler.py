"""The Lambda handler end to end: console events, Secrets Manager (moto), EMF metrics, no secret leaks."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from functions.handler import handler
from shared.db import reset_connection
from shared.errors import (
    DatabaseUnavailable,
    DependencyNotMet,
    JobFailed,
    JobsError,
    JobTimeout,
    ValidationError,
)
from shared.observability import logger
from tests.factories import lambda_context

EVENTS = Path(__file__).resolve().parent.parent / "events"
JOB = "cleanup-expired-sessions"


@pytest.fixture
def env(db_url, monkeypatch):
    monkeypatch.setenv("JOB_NAME", JOB)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    reset_connection()
    yield
    reset_connection()


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def emf_blobs(text: str) -> list[dict]:
    blobs = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def test_scheduled_event_runs_the_job_and_returns_the_result(env, conn, capsys):
    # Given a user whose heartbeat is stale at the event's time
    uid = conn.execute("INSERT INTO users (username, email) VALUES ('a', 'a@x') RETURNING id").fetchone()["id"]
    conn.execute("INSERT INTO user_presence VALUES (%s, true, '2026-11-27 23:40:00+00')", (uid,))
    context = lambda_context(JOB)
    # (Powertools' handler holds the stdout of import time; point it at the captured one)
    stream = logger.registered_handler
    previous = stream.setStream(sys.stdout)
    # When the scheduled event arrives
    try:
        result = handler(event("scheduled_event.json"), context)
    finally:
        stream.setStream(previous)
    # Then the result says what happened, and the run log row matches
    assert result["status"] == "succeeded" and result["job"] == JOB and result["as_of"] == "2026-11-28T00:00:00Z"
    assert result["summary"] == {"typing_indicators_deleted": 0, "users_marked_offline": 1}
    row = conn.execute("SELECT * FROM cron_job_logs WHERE id = %s", (result["log_id"],)).fetchone()
    assert (row["trigger"], row["request_id"], row["status"]) == ("schedule", context.aws_request_id, "succeeded")
    # And EMF metrics were emitted with the job dimension and the summary counts
    out = capsys.readouterr().out
    [blob] = emf_blobs(out)
    assert blob["job"] == JOB and blob["service"] == "scheduled-jobs"
    assert blob["RunsSucceeded"] in (1.0, [1.0]) and blob["users_marked_offline"] in (1.0, [1.0])
    names = {m["Name"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"RunsSucceeded", "DurationMs", "users_marked_offline", "typing_indicators_deleted"} <= names
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LangexScheduledJobs"
    # And every log line of the run carries the job, run id, as_of and request id
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"level"')]
    run_lines = [line for line in lines if line["message"].startswith("run ")]
    assert run_lines and all(
        line["job"] == JOB
        and line["run_id"] == result["log_id"]
        and line["as_of"] == "2026-11-28T00:00:00Z"
        and line["function_request_id"] == context.aws_request_id
        for line in run_lines
    )


def test_the_same_event_twice_is_a_skip_not_an_error(env):
    handler(event("scheduled_event.json"), lambda_context(JOB))
    second = handler(event("scheduled_event.json"), lambda_context(JOB))
    assert second["status"] == "skipped" and "already succeeded" in second["reason"]


def test_a_scheduled_event_stamped_within_its_minute_is_logged_on_the_grid(env, conn):
    # Given EventBridge delivering the 00:00 occurrence stamped 00:00:07 (it fires within the minute)
    late = {**event("scheduled_event.json"), "time": "2026-11-28T00:00:07Z"}
    # When it runs, and the same occurrence is delivered again stamped 00:00:00
    first = handler(late, lambda_context(JOB))
    again = handler(event("scheduled_event.json"), lambda_context(JOB))
    # Then the run is logged with as_of 00:00:00, and the second delivery is a duplicate of it
    row = conn.execute("SELECT as_of FROM cron_job_logs WHERE id = %s", (first["log_id"],)).fetchone()
    assert first["as_of"] == "2026-11-28T00:00:00Z" and row["as_of"].isoformat() == "2026-11-28T00:00:00+00:00"
    assert again["status"] == "skipped" and "already succeeded" in again["reason"]


def test_a_manual_as_of_is_kept_as_given(env, conn):
    result = handler({"as_of": "2026-11-28T00:00:07Z"}, lambda_context(JOB))
    assert result["as_of"] == "2026-11-28T00:00:07Z"


@pytest.mark.parametrize(
    "name", ["manual_run_now.json", "manual_backfill.json", "manual_dry_run.json", "manual_force_rerun.json"]
)
def test_every_sample_console_event_runs(env, name):
    result = handler(event(name), lambda_context(JOB))
    assert result["status"] == "succeeded"
    assert result["trigger"] == "manual"


def test_a_bad_payload_is_refused_before_any_database_work(env, conn):
    with pytest.raises(ValidationError, match="unknown field 'jobs'"):
        handler({"jobs": "all"}, lambda_context(JOB))
    assert conn.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 0


def test_unknown_job_name_is_a_clear_error(env, monkeypatch):
    monkeypatch.setenv("JOB_NAME", "no-such-job")
    with pytest.raises(KeyError, match="unknown job 'no-such-job'; the jobs are: reset-daily-challenges"):
        handler({}, lambda_context(JOB))


@mock_aws
def test_reads_the_url_from_secrets_manager(db_url, monkeypatch):
    # Given the connection URL stored as a secret (as the stack wires it)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("JOB_NAME", JOB)
    params = conninfo_to_dict(db_url)
    url = (
        f"postgresql://{params.get('user', 'postgres')}@/{params['dbname']}"
        f"?host={params['host']}&port={params.get('port', 5432)}"
    )
    arn = boto3.client("secretsmanager").create_secret(Name="langex/db", SecretString=url)["ARN"]
    monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
    reset_connection()
    try:
        result = handler({"dry_run": True}, lambda_context(JOB))
    finally:
        reset_connection()
    assert result["status"] == "succeeded" and result["dry_run"] is True


@mock_aws
def test_rds_style_json_secret_and_a_wrong_password_never_leak_it(monkeypatch, capsys):
    # Given an RDS-style secret whose password is wrong for a database that cannot be reached
    password = "Recognizable-Pa55word-42"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("JOB_NAME", JOB)
    secret = {"username": "jobs", "password": password, "host": "127.0.0.1", "port": 1, "dbname": "app"}
    arn = boto3.client("secretsmanager").create_secret(Name="rds/db", SecretString=json.dumps(secret))["ARN"]
    monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
    reset_connection()
    # When the handler runs
    with pytest.raises(DatabaseUnavailable) as info:
        handler({}, lambda_context(JOB))
    reset_connection()
    # Then the error is clear and the password appears nowhere
    captured = capsys.readouterr()
    assert "could not be reached" in str(info.value)
    assert password not in str(info.value) and password not in captured.out and password not in captured.err


# --------------------------------------------------------------------------- every failure reaches Lambda


def fail_the_job(conn, db_url, stack, monkeypatch):
    """The job's own SQL raises (a trigger on the table it deletes from)."""
    uid = conn.execute("INSERT INTO users (username, email) VALUES ('t', 't@x') RETURNING id").fetchone()["id"]
    conn.execute(
        "INSERT INTO typing_indicators VALUES (1, %s, '2026-11-27 23:00+00', '2026-11-27 23:00:10+00')", (uid,)
    )
    conn.execute("""CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'typing indicators are read-only today'; END $$""")
    conn.execute("CREATE TRIGGER refuse BEFORE DELETE ON typing_indicators FOR EACH ROW EXECUTE FUNCTION refuse()")
    return JobFailed, "failed", "typing indicators are read-only today"


def time_the_job_out(conn, db_url, stack, monkeypatch):
    """Another session holds a lock the job needs for longer than the job's budget."""
    holder = stack.enter_context(psycopg.connect(db_url))
    holder.execute("LOCK TABLE user_presence IN ACCESS EXCLUSIVE MODE")
    return JobTimeout, "failed", "cancelled after reaching its time budget"


def leave_its_dependency_undone(conn, db_url, stack, monkeypatch):
    """calculate-daily-metrics needs yesterday's streaks, which were never computed."""
    monkeypatch.setenv("JOB_NAME", "calculate-daily-metrics")
    return DependencyNotMet, "failed", "needs update-user-streaks for 2026-11-27"


FAILURES = {
    "failed job": fail_the_job,
    "timeout": time_the_job_out,
    "unmet dependency": leave_its_dependency_undone,
}


@pytest.mark.parametrize("failure", FAILURES)
def test_every_job_failure_is_raised_to_lambda(env, conn, db_url, monkeypatch, failure):
    # Given a scheduled occurrence that cannot do its work (a failing job, a lock held past the
    # budget, a dependency not done past its dependency deadline)
    setup = FAILURES[failure]
    with contextlib.ExitStack() as stack:
        expected, status, message = setup(conn, db_url, stack, monkeypatch)
        # (a 16 s Lambda leaves the job a 1 s budget after the handler's reserve)
        context = lambda_context(JOB, remaining_s=16)
        # When EventBridge delivers it to the Lambda handler
        with pytest.raises(JobsError) as info:
            handler(event("scheduled_event.json"), context)
    # Then the handler raises the run's error (so Lambda retries it, then dead-letters it) ...
    assert type(info.value) is expected and message in str(info.value)
    # ... after the run log recorded it under the invocation's request id
    [row] = conn.execute("SELECT * FROM cron_job_logs WHERE request_id = %s", (context.aws_request_id,)).fetchall()
    assert row["status"] == status and message in row["error_message"]


def test_a_scheduled_overlap_is_recorded_and_returned_never_raised(env, conn):
    # Given an earlier occurrence of the job still running (its deadline not reached)
    conn.execute(
        """INSERT INTO cron_job_logs (job_name, status, trigger, as_of, deadline_at)
           VALUES (%s, 'running', 'schedule', '2026-11-27 23:45+00', clock_timestamp() + interval '1 hour')""",
        (JOB,),
    )
    # When EventBridge delivers the next occurrence
    context = lambda_context(JOB)
    result = handler(event("scheduled_event.json"), context)
    # Then it returns (no Lambda retry, no dead letter): skipped by the job's overlap policy (skip)
    assert result["status"] == "skipped" and "overlap policy (skip)" in result["reason"]
    [row] = conn.execute("SELECT * FROM cron_job_logs WHERE request_id = %s", (context.aws_request_id,)).fetchall()
    assert row["status"] == "skipped" and row["metadata"]["overlap"] == "skip"
