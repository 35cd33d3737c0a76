"""jobctl's AWS commands against moto (EventBridge rules, Lambda), plus botocore's Stubber
where moto cannot stand in.

- pause / resume / reschedule / status: moto's EventBridge; the test asserts the rule's
  State and ScheduleExpression as EventBridge reports them afterwards.
- invoke: moto's Lambda without Docker (``use_docker: False``) cannot run our code: it
  echoes the request payload back, or returns a queued canned result. That proves the
  function name and payload jobctl sends and how it prints the result. A function error
  (the handler raised) and a missing function (moto answers any name) cannot be produced
  by moto, so those two cases use botocore's Stubber.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from jobctl import aws
from jobctl.cli import app
from shared import naming, registry
from shared.cron import to_eventbridge

REGION = "eu-west-1"
runner = CliRunner()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_PROFILE", "JOBCTL_PREFIX", "DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def events(aws_env: None) -> Any:
    """EventBridge with the stack's rules, as the CDK app deploys them (every job but one)."""
    client = boto3.client("events", region_name=REGION)
    for job in registry.JOBS:
        if job.name == "database-maintenance":
            continue  # left undeployed: status must say so
        client.put_rule(
            Name=naming.rule_name(job.name),
            ScheduleExpression=to_eventbridge(job.cron),
            State="ENABLED",
            Description=f"{job.name}: {job.description}",
        )
    return client


def jobctl(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def rule(client: Any, job: str, prefix: str = "") -> dict[str, Any]:
    found = client.describe_rule(Name=naming.rule_name(job, prefix))
    found.pop("ResponseMetadata", None)
    return found


def assert_one_line_error(result: Any, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jobctl: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# --------------------------------------------------------------------------- pause / resume


def test_pause_then_resume_toggles_the_rule(events: Any) -> None:
    result = jobctl("pause", "send-daily-reminders", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "DISABLED"
    assert rule(events, "send-daily-reminders")["State"] == "DISABLED"
    assert rule(events, "reset-daily-challenges")["State"] == "ENABLED"  # only that job

    result = jobctl("resume", "send-daily-reminders")
    assert result.exit_code == 0, result.stderr
    assert "resumed send-daily-reminders-schedule" in result.stdout
    assert rule(events, "send-daily-reminders")["State"] == "ENABLED"


def test_prefix_selects_a_second_deployment(aws_env: None) -> None:
    client = boto3.client("events", region_name=REGION)
    client.put_rule(
        Name=naming.rule_name("update-leaderboards", "staging-"),
        ScheduleExpression="cron(0 * * * ? *)",
        State="ENABLED",
    )
    assert jobctl("pause", "update-leaderboards", env={"JOBCTL_PREFIX": "staging-"}).exit_code == 0
    assert rule(client, "update-leaderboards", "staging-")["State"] == "DISABLED"


def test_pause_of_an_undeployed_rule_says_so(events: Any) -> None:
    assert_one_line_error(
        jobctl("pause", "database-maintenance"), 1, "database-maintenance-schedule", "is the stack deployed"
    )


# --------------------------------------------------------------------------- reschedule


def test_reschedule_converts_the_cron_and_keeps_the_rule_otherwise(events: Any) -> None:
    # Given a paused rule
    jobctl("pause", "send-daily-reminders")
    before = rule(events, "send-daily-reminders")
    # When rescheduled to 8 PM (the guide's example)
    result = jobctl("reschedule", "send-daily-reminders", "0 20 * * *")
    # Then only the schedule changed: still paused, same description
    assert result.exit_code == 0, result.stderr
    after = rule(events, "send-daily-reminders")
    assert after["ScheduleExpression"] == "cron(0 20 * * ? *)"
    assert (after["State"], after["Description"]) == ("DISABLED", before["Description"])
    assert "cdk deploy" in result.stderr  # the reminder that a deploy puts the registry's cron back


def test_reschedule_to_a_weekday_schedule(events: Any) -> None:
    assert jobctl("reschedule", "send-weekly-reports", "30 6 * * 1-5").exit_code == 0
    assert rule(events, "send-weekly-reports")["ScheduleExpression"] == "cron(30 6 ? * MON-FRI *)"


@pytest.mark.parametrize(
    ("cron", "fragment"),
    [
        ("0 25 * * *", "out of range for the hour field"),
        ("0 0 * *", "has 4 field(s)"),
        ("0 0 1 * 1", "restricts both day-of-month and day-of-week"),
        ("cron(0 20 * * ? *)", "EventBridge expression"),
    ],
)
def test_reschedule_refuses_a_bad_cron_and_changes_nothing(events: Any, cron: str, fragment: str) -> None:
    before = rule(events, "send-daily-reminders")
    assert_one_line_error(jobctl("reschedule", "send-daily-reminders", cron), 2, fragment)
    assert rule(events, "send-daily-reminders") == before


def test_unknown_job_is_a_usage_error(events: Any) -> None:
    for args in (("pause", "nope"), ("resume", "nope"), ("reschedule", "nope", "0 0 * * *"), ("invoke", "nope")):
        assert_one_line_error(jobctl(*args), 2, "unknown job 'nope'")


def test_no_region_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert_one_line_error(jobctl("pause", "send-daily-reminders"), 1, "no AWS region")


@pytest.fixture
def no_aws_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No region anywhere (nor credentials): any AWS call would fail with exit 1."""
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("pause", "nope"), "unknown job 'nope'"),
        (("resume", "nope"), "unknown job 'nope'"),
        (("reschedule", "nope", "0 0 * * *"), "unknown job 'nope'"),
        (("reschedule", "send-daily-reminders", "0 25 * * *"), "out of range for the hour field"),
        (("reschedule", "send-daily-reminders", "cron(0 20 * * ? *)"), "EventBridge expression"),
        (("invoke", "nope"), "unknown job 'nope'"),
        (("invoke", "update-user-streaks", "--as-of", "yesterday"), "is not a time"),
        (("invoke", "update-user-streaks", "--as-of", "0001-01-02"), "before the year 2000"),
        (("invoke", "update-user-streaks", "--as-of", "2999-01-01"), "in the future"),
    ],
)
def test_bad_input_is_refused_before_reading_any_aws_configuration(
    no_aws_region: None, args: tuple[str, ...], fragment: str
) -> None:
    # Given no AWS region (a call would exit 1 "no AWS region")
    # Then the name, the cron and the time are refused first: a usage error, one line
    assert_one_line_error(jobctl(*args), 2, fragment)


def test_valid_input_without_a_region_reaches_aws_and_says_what_is_missing(no_aws_region: None) -> None:
    for args in (
        ("resume", "send-daily-reminders"),
        ("reschedule", "send-daily-reminders", "0 20 * * *"),
        ("invoke", "update-user-streaks", "--as-of", "2026-11-01"),
        ("status",),
    ):
        assert_one_line_error(jobctl(*args), 1, "no AWS region")


# --------------------------------------------------------------------------- status


def test_status_lists_each_rule_with_state_schedule_and_drift(events: Any) -> None:
    jobctl("pause", "send-daily-reminders")
    jobctl("reschedule", "update-leaderboards", "30 * * * *")
    result = jobctl("status", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    by_job = {r["job"]: r for r in data["rules"]}
    assert [r["job"] for r in data["rules"]] == [job.name for job in registry.JOBS]
    assert (by_job["send-daily-reminders"]["state"], by_job["send-daily-reminders"]["drift"]) == ("DISABLED", False)
    assert by_job["update-leaderboards"]["schedule"] == "cron(30 * * * ? *)"
    assert by_job["update-leaderboards"]["drift"] is True
    assert by_job["database-maintenance"]["state"] == "NOT DEPLOYED"
    assert by_job["reset-daily-challenges"]["last_status"] is None
    assert data["note"].startswith("no DATABASE_URL")


def test_status_shows_the_last_runs_when_a_database_is_reachable(events: Any, db_url: str, conn: Any) -> None:
    conn.execute("""
        INSERT INTO cron_job_logs (job_name, status, started_at, finished_at, trigger, as_of, error_message)
        VALUES ('update-user-streaks', 'succeeded', '2026-11-27 00:00:01Z', '2026-11-27 00:00:02Z', 'schedule',
                '2026-11-27 00:00Z', NULL),
               ('update-user-streaks', 'failed', '2026-11-28 00:00:01Z', '2026-11-28 00:00:02Z', 'schedule',
                '2026-11-28 00:00Z', 'boom')""")
    result = jobctl("status", "--json", env={"DATABASE_URL": db_url})
    data = json.loads(result.stdout)
    streaks = {r["job"]: r for r in data["rules"]}["update-user-streaks"]
    assert (streaks["state"], streaks["last_status"], streaks["last_as_of"], streaks["last_success_at"]) == (
        "ENABLED",
        "failed",
        "2026-11-28T00:00:00+00:00",
        "2026-11-27T00:00:01+00:00",
    )
    assert data["note"] is None
    table = jobctl("status", env={"DATABASE_URL": db_url})
    assert table.exit_code == 0 and "update-user-streaks" in table.stdout and "DISABLED" not in table.stdout


def test_status_with_an_unreachable_database_still_shows_the_rules(events: Any) -> None:
    result = jobctl("status", "--json", env={"DATABASE_URL": "postgresql://ops:Sup3rSecretPw@127.0.0.1:1/app"})
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert len(data["rules"]) == len(registry.JOBS)
    assert "database not reachable" in data["note"] and "Sup3rSecretPw" not in result.stdout


# --------------------------------------------------------------------------- invoke


def _deploy_function(job: str, prefix: str = "") -> Any:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName="job-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("functions/handler.py", "def handler(event, context):\n    return {}\n")
    client = boto3.client("lambda", region_name=REGION)
    client.create_function(
        FunctionName=naming.function_name(job, prefix),
        Runtime="python3.12",
        Role=role,
        Handler="functions.handler.handler",
        Code={"ZipFile": code.getvalue()},
    )
    return client


def test_invoke_sends_the_manual_payload_to_the_jobs_function(aws_env: None) -> None:
    # moto (no Docker) echoes the request payload: we see exactly what jobctl sent, and to whom
    _deploy_function("update-user-streaks")
    result = jobctl("invoke", "update-user-streaks", "--as-of", "2026-11-28", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"as_of": "2026-11-28T00:00:00Z", "dry_run": True}


def test_invoke_prints_the_functions_result(aws_env: None) -> None:
    # Given moto queued with a result shaped like the handler's
    from moto.awslambda_simple.models import lambda_simple_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    _deploy_function("reset-daily-challenges", prefix="prod-")
    handler_result = {
        "job": "reset-daily-challenges",
        "status": "succeeded",
        "as_of": "2026-11-28T00:00:00Z",
        "trigger": "manual",
        "log_id": 7,
        "duration_ms": 12.5,
        "dry_run": False,
        "forced": False,
        "summary": {"challenges_archived": 1, "challenges_activated": 1},
    }
    lambda_simple_backends[DEFAULT_ACCOUNT_ID][REGION].lambda_simple_results_queue.append(json.dumps(handler_result))
    # When invoked (the deployment's prefix from --prefix)
    result = jobctl("invoke", "reset-daily-challenges", "--prefix", "prod-")
    # Then the result is printed as a table
    assert result.exit_code == 0, result.stderr
    assert "succeeded" in result.stdout and "challenges_archived" in result.stdout


def test_invoke_of_a_missing_function_is_one_line(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's Docker-less Lambda answers any function name, so the 404 comes from botocore's Stubber
    client = boto3.client("lambda", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "invoke",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        service_message="Function not found: update-user-streaks",
    )
    monkeypatch.setattr(aws, "client", lambda service: client)
    with stubber:
        result = jobctl("invoke", "update-user-streaks")
    assert_one_line_error(result, 1, "Function not found: update-user-streaks", "is the stack deployed")


def test_invoke_reports_a_function_error_in_one_line(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto cannot make a function fail, so the Lambda client is stubbed with botocore's Stubber
    client = boto3.client("lambda", region_name=REGION)
    body = json.dumps(
        {
            "errorType": "DependencyNotMet",
            "errorMessage": "calculate-daily-metrics needs update-user-streaks for 2026-11-27\nretry later",
        }
    ).encode()
    stubber = Stubber(client)
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": StreamingBody(io.BytesIO(body), len(body))},
        {"FunctionName": "calculate-daily-metrics", "InvocationType": "RequestResponse", "Payload": b"{}"},
    )
    monkeypatch.setattr(aws, "client", lambda service: client)
    with stubber:
        result = jobctl("invoke", "calculate-daily-metrics")
    stubber.assert_no_pending_responses()
    assert_one_line_error(result, 1, "DependencyNotMet", "update-user-streaks for 2026-11-27")
