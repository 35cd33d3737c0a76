"""Hostile input: every input either works or is refused with a clear message.

Property-based (hypothesis) for the Lambda event parser, the cron parser and converter and
the CLI's arguments; then: nothing reaches SQL except as a bound parameter, and no secret
appears in any output, log or stored error message.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from aws_croniter import AwsCroniter
from croniter import croniter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from jobctl.cli import app
from shared import registry
from shared.cron import CronError, CronExpr, parse, to_eventbridge
from shared.errors import JobsError, ValidationError
from shared.events import RunRequest, Trigger, parse_event
from shared.runner import Status, run
from tests.factories import utc

NOW = utc(2026, 11, 28, 12, 0)
JOB = registry.get("update-user-streaks")
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)

_year = st.integers(min_value=1, max_value=9999)
_offsets = st.sampled_from(["Z", "+00:00", "-23:59", "+23:59", "+05:30", "-12:00", "", "+24:00", "z"])


@st.composite
def iso_times(draw) -> str:
    """ISO-8601-looking text, well- and ill-formed, including extreme years and offsets."""
    y, mo, d = draw(_year), draw(st.integers(0, 13)), draw(st.integers(0, 32))
    h, mi, s = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    frac = draw(st.sampled_from(["", ".5", ".123456", ".1234567"]))
    sep = draw(st.sampled_from(["T", " ", "t"]))
    return f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{draw(_offsets)}"


_time_like = iso_times() | st.text(max_size=30) | st.integers() | st.floats() | st.booleans() | st.none()
manual_payloads = st.dictionaries(
    st.sampled_from(["as_of", "dry_run", "force", "asof", "id", ""]), _time_like | json_values, max_size=4
)
scheduled_events = st.fixed_dictionaries(
    {
        "detail-type": st.sampled_from(["Scheduled Event", "scheduled event", "", "Object Created"])
        | st.text(max_size=10),
        "source": st.sampled_from(["aws.events", "jobctl.scheduler", "aws.s3"]) | st.text(max_size=10),
        "time": _time_like,
    },
    optional={"id": st.text(max_size=20) | st.integers(), "detail": json_values, "resources": json_values},
)


def _check_request(request: RunRequest) -> None:
    assert isinstance(request, RunRequest)
    assert request.as_of.tzinfo is not None and request.as_of.utcoffset() == timedelta(0)
    assert datetime(2000, 1, 1, tzinfo=UTC) <= request.as_of <= NOW + timedelta(minutes=5)
    assert isinstance(request.dry_run, bool) and isinstance(request.force, bool)


# --------------------------------------------------------------------------- the event parser


@PROPERTY
@given(event=json_values | manual_payloads | scheduled_events)
def test_any_event_is_a_run_request_or_a_validation_error(event: Any) -> None:
    try:
        request = parse_event(JOB, event, now=NOW)
    except ValidationError as exc:
        message = str(exc)
        assert message.startswith("invalid ") and "\n" not in message and "Traceback" not in message
        return
    _check_request(request)


@PROPERTY
@given(as_of=iso_times())
def test_any_as_of_text_is_accepted_only_as_an_aware_past_time(as_of: str) -> None:
    try:
        request = parse_event(JOB, {"as_of": as_of}, now=NOW)
    except ValidationError:
        return
    _check_request(request)
    assert request.trigger is Trigger.MANUAL and request.explicit_as_of


# --------------------------------------------------------------------------- cron

_cron_atoms = st.sampled_from(
    ["*", "?", "L", "W", "#", "-", "/", ",", "MON", "sun", "JAN", "dec", "@daily", "@reboot"]
) | st.integers(min_value=-2, max_value=70).map(str)


@st.composite
def cron_fields(draw) -> str:
    """One cron field: atoms joined by the cron operators (often valid, often not)."""
    parts = draw(st.lists(_cron_atoms, min_size=1, max_size=4))
    joins = draw(st.lists(st.sampled_from(["", "-", "/", ","]), min_size=len(parts) - 1, max_size=len(parts) - 1))
    out = parts[0]
    for join, part in zip(joins, parts[1:], strict=True):
        out += join + part
    return out


cron_texts = (
    st.lists(cron_fields(), min_size=1, max_size=7).map(" ".join)
    | st.text(max_size=30)
    | st.sampled_from(
        ["@hourly", "@weekly", "@yearly", "cron(0 0 * * ? *)", "rate(5 minutes)", "", "     ", "0 0 30 2 *"]
    )
)


@PROPERTY
@given(text=cron_texts)
def test_any_text_is_a_cron_or_a_cron_error(text: str) -> None:
    try:
        parsed = parse(text)
    except CronError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(parsed, CronExpr)
    try:
        expression = to_eventbridge(text)
    except CronError as exc:
        assert "EventBridge cannot express" in str(exc)
        return
    # Then EventBridge's own semantics (aws-croniter) read it without error ...
    assert expression.startswith("cron(") and expression.endswith(" *)")
    inner = expression.removeprefix("cron(").removesuffix(")")
    start = datetime(2026, 11, 28, 16, 49, tzinfo=UTC)
    try:
        unix = croniter(parsed.text, start)
        expected = [unix.get_next(datetime).astimezone(UTC) for _ in range(3)]
    except Exception:  # a date that never comes (30 February): nothing to compare
        AwsCroniter(inner)
        return
    # ... and fire at the same times as the Unix cron
    assert [t.astimezone(UTC) for t in AwsCroniter(inner).get_next(start, 3)] == expected


# --------------------------------------------------------------------------- the CLI

PASSWORD = "Hostile-Cli-S3cret-pw9"
UNREACHABLE = f"postgresql://jobs:{PASSWORD}@127.0.0.1:1/app?connect_timeout=2"
names = st.text(min_size=0, max_size=30) | st.sampled_from(
    ["update-user-streaks'; DROP TABLE users; --", "--help", "-", "../../etc/passwd", "UPDATE-USER-STREAKS"]
)


def invoke_cli(args: list[str], database_url: str = UNREACHABLE) -> tuple[int, str, str]:
    env = {"DATABASE_URL": database_url, "JOBCTL_DEBUG": None, "AWS_DEFAULT_REGION": "eu-west-1"}
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args!r} raised {result.exception!r}")
    return result.exit_code, result.stdout, result.stderr


def assert_clear(args: list[str], code: int, out: str, err: str, *, progress: bool = False) -> None:
    assert code in (0, 1, 2), (args, code, out, err)
    assert "Traceback" not in out + err, (args, out, err)
    assert PASSWORD not in out + err
    if (code == 1 and not progress) or (code == 2 and "Usage:" not in err):
        # our own refusals and failures: exactly one line on stderr
        assert len(err.strip().splitlines()) == 1, (args, err)


CLI_PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@CLI_PROPERTY
@given(name=names)
def test_cli_run_any_job_name(name: str) -> None:
    assume(name not in registry.BY_NAME)
    code, out, err = invoke_cli(["run", "--", name])
    assert_clear(["run", name], code, out, err)
    assert code == 2


@CLI_PROPERTY
@given(as_of=iso_times() | st.text(max_size=30))
def test_cli_run_any_as_of(as_of: str) -> None:
    # a valid past time reaches the (unreachable) database: exit 1, one line, no password
    code, out, err = invoke_cli(["run", "update-user-streaks", "--as-of", as_of])
    assert_clear(["run", "--as-of", as_of], code, out, err)
    assert code in (1, 2)


@CLI_PROPERTY
@given(start=iso_times() | st.text(max_size=30), days=st.integers(-3, 400).map(str) | st.text(max_size=5))
def test_cli_simulate_any_window(start: str, days: str) -> None:
    # (a simulation prints progress on stderr; a window with no fire time is a no-op: exit 0)
    code, out, err = invoke_cli(["simulate", "--start", start, "--days", days, "--job", "update-user-streaks"])
    assert_clear(["simulate", start, days], code, out, err, progress=True)


def test_cli_reschedule_any_cron(monkeypatch, db_url) -> None:
    from moto import mock_aws

    from shared.naming import rule_name

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        import boto3

        boto3.client("events").put_rule(Name=rule_name("update-user-streaks"), ScheduleExpression="cron(0 0 * * ? *)")

        @CLI_PROPERTY
        @given(cron=cron_texts)
        def check(cron: str) -> None:
            # (a reschedule also records the change in the database's job state)
            code, out, err = invoke_cli(["reschedule", "update-user-streaks", "--", cron], database_url=db_url)
            assert_clear(["reschedule", cron], code, out, err)
            try:
                to_eventbridge(cron)
                valid = True
            except CronError:
                valid = False
            # a valid cron reschedules the rule; anything else is a usage error, and the rule is unchanged
            assert code == (0 if valid else 2), (cron, code, out, err)

        check()
        assert boto3.client("events").describe_rule(Name=rule_name("update-user-streaks"))["State"] == "ENABLED"


@pytest.mark.parametrize(
    "args",
    [
        ["pause", "no-such-job"],
        ["logs", "--job", "x'; DROP TABLE users; --"],
        ["run", "update-user-streaks", "--event", "/nonexistent/event.json"],
        ["reschedule", "update-user-streaks", "0 0 * * * *"],
        ["simulate", "--start", "yesterday"],
        ["list", "--bogus"],
    ],
)
def test_cli_refusals_are_one_line_with_exit_code_2(args: list[str]) -> None:
    code, out, err = invoke_cli(args)
    assert_clear(args, code, out, err)
    assert code == 2, (args, code, err)


# --------------------------------------------------------------------------- bound parameters only

HOSTILE = "x'); DROP TABLE users; SELECT ('"


@pytest.fixture
def runner_db(db_url, conn, runner_on):
    runner_on(db_url)
    return conn


def test_hostile_text_reaches_sql_only_as_data(runner_db):
    conn = runner_db
    # Given a job whose name, request id and event id are hostile text (the registry refuses such
    # names, so the job is built around its validation, as a compromised caller might)
    job = dataclasses.replace(registry.get("cleanup-expired-sessions"), name=HOSTILE + ";--")
    request = RunRequest(job=job, as_of=utc(2026, 11, 28), trigger=Trigger.SCHEDULE, event_id=HOSTILE + '"}')
    # When it runs
    result = run(request, request_id=HOSTILE + "\\'; --")
    # Then the run worked, the text is stored verbatim, and every table is still there
    assert result.status is Status.SUCCEEDED
    row = conn.execute("SELECT job_name, request_id, metadata FROM cron_job_logs").fetchone()
    assert row["job_name"] == HOSTILE + ";--"
    assert row["request_id"] == HOSTILE + "\\'; --"
    assert row["metadata"]["event_id"] == HOSTILE + '"}'
    assert conn.execute("SELECT to_regclass('users') IS NOT NULL AS ok").fetchone()["ok"]
    # and a second delivery of the same hostile occurrence is deduplicated by the same (bound) name
    assert run(request).status is Status.SKIPPED


def test_hostile_event_text_is_refused_before_any_sql(runner_db):
    for event in (
        {"as_of": "2026-11-28T00:00:00Z'; DROP TABLE users; --"},
        {"detail-type": "Scheduled Event", "source": "aws.events", "time": "'; DELETE FROM users; --"},
    ):
        with pytest.raises(ValidationError):
            parse_event(JOB, event, now=NOW)
    assert runner_db.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 0


# --------------------------------------------------------------------------- no secret anywhere

SECRET = "Zq7-Recognizable-DB-Passw0rd"
FAILING_SQL = """
CREATE FUNCTION job_leaky(p_as_of timestamptz) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    -- a job error that quotes its connection details (as a misbehaving extension might)
    RAISE EXCEPTION 'could not reach postgresql://jobs:%@db.example.com:6543/app (password=%) [%]',
        current_setting('test.secret'), current_setting('test.secret'), current_setting('test.secret');
END $$;
"""


def test_no_secret_in_results_logs_metrics_or_stored_errors(conn, admin_url, runner_on, capsys, log_output):
    # Given the runner connected with a URL holding a recognizable password (the server trusts local
    # connections here, so the password is carried but not checked), and a job whose error quotes it
    conn.execute(FAILING_SQL)
    dbname = conn.info.dbname
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE \"{dbname}\" SET test.secret = '{SECRET}'")
    host = conn.info.host
    url = (
        f"postgresql://{conn.info.user}:{SECRET}@/{dbname}?host={host}&port={conn.info.port}"
        if host.startswith("/")
        else f"postgresql://{conn.info.user}:{SECRET}@{host}:{conn.info.port}/{dbname}"
    )
    runner_on(url)
    leaky = registry.Job(
        name="leaky-job", cron="0 * * * *", description="leaks", sql_function="leaky", summary_keys=("n",)
    )
    # When it fails through the Lambda handler's code path (the runner, with Powertools logging)
    with pytest.raises(JobsError) as info:
        run(RunRequest(job=leaky, as_of=utc(2026, 11, 28), trigger=Trigger.SCHEDULE), request_id="req-secret")
    # Then the error, the stored row and every line printed carry no password
    row = conn.execute("SELECT status, error_message, metadata::text AS m FROM cron_job_logs").fetchone()
    assert row["status"] == "failed" and "could not reach postgresql://jobs:***@db.example.com" in row["error_message"]
    printed = capsys.readouterr()
    logged = log_output.getvalue()
    for text in (str(info.value), row["error_message"], row["m"], printed.out, printed.err, logged):
        assert SECRET not in text
    assert '"message":"run failed"' in logged and "could not reach" in logged  # the log line was written


def test_no_secret_when_the_database_refuses_or_is_unreachable(runner_on, capsys, caplog, log_output):
    from functions.handler import handler
    from jobctl.local import LambdaContext

    runner_on(f"postgresql://jobs:{SECRET}@127.0.0.1:1/app?connect_timeout=2")
    os.environ["JOB_NAME"] = JOB.name
    try:
        with pytest.raises(JobsError) as info:
            handler({}, LambdaContext.for_job(JOB))
    finally:
        os.environ.pop("JOB_NAME", None)
    printed = capsys.readouterr()
    assert "could not be reached" in str(info.value)
    for text in (str(info.value), printed.out, printed.err, log_output.getvalue(), caplog.text):
        assert SECRET not in text
    # and the CLI says it in one line, without the password either
    code, out, err = invoke_cli(["--database-url", f"postgresql://jobs:{SECRET}@127.0.0.1:1/app", "stats"])
    assert code == 1 and SECRET not in out + err and len(err.strip().splitlines()) == 1


def test_the_sample_console_events_parse():
    # a guard that the shapes the strategies above mutate are the real ones: every sample event
    # the README points operators to parses into the request it stands for
    from pathlib import Path

    events = {
        p.name: json.loads(p.read_text()) for p in (Path(__file__).resolve().parent.parent / "events").glob("*.json")
    }
    assert sorted(events) == [
        "manual_backfill.json",
        "manual_dry_run.json",
        "manual_force_rerun.json",
        "manual_run_now.json",
        "scheduled_event.json",
    ]
    parsed = {name: parse_event(JOB, event) for name, event in events.items()}
    scheduled = parsed["scheduled_event.json"]
    assert (scheduled.trigger, scheduled.as_of, scheduled.event_id) == (
        Trigger.SCHEDULE,
        datetime(2026, 11, 28, tzinfo=UTC),
        events["scheduled_event.json"]["id"],
    )
    now = parsed["manual_run_now.json"]
    assert (now.trigger, now.explicit_as_of, now.dry_run, now.force) == (Trigger.MANUAL, False, False, False)
    backfill = parsed["manual_backfill.json"]
    assert backfill.explicit_as_of and backfill.as_of == datetime.fromisoformat(events["manual_backfill.json"]["as_of"])
    assert parsed["manual_dry_run.json"].dry_run and not parsed["manual_dry_run.json"].force
    assert parsed["manual_force_rerun.json"].force and parsed["manual_force_rerun.json"].explicit_as_of
