"""jobctl's local commands against a real Postgres (a fresh migrated database per test).

Each command runs through typer's CliRunner with ``DATABASE_URL`` pointing at the test's
database; ``run`` and ``simulate`` go through the real Lambda handler.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jobctl.cli import app
from shared import registry
from shared.cron import to_eventbridge
from tests.factories import make_user, record_activity, utc

runner = CliRunner()


def jobctl(db_url: str | None, *args: str) -> Any:
    env = {"DATABASE_URL": db_url} if db_url else {}
    return runner.invoke(app, list(args), env=env)


def records(conn: Any, query: str) -> list[dict[str, Any]]:
    return list(conn.execute(query).fetchall())


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result: Any, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jobctl: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# --------------------------------------------------------------------------- list, migrate


def test_list_shows_every_job_with_its_schedules_and_next_run() -> None:
    data = as_json(jobctl(None, "list", "--json"))
    assert [row["job"] for row in data] == [job.name for job in registry.JOBS]
    by_name = {row["job"]: row for row in data}
    sessions = by_name["cleanup-expired-sessions"]
    assert (sessions["cron"], sessions["eventbridge"], sessions["schedule"]) == (
        "*/15 * * * *",
        "cron(0/15 * * * ? *)",
        "Every 15 minutes",
    )
    assert by_name["send-weekly-reports"]["eventbridge"] == "cron(0 0 ? * SUN *)"
    assert by_name["send-weekly-reports"]["timeout_s"] == 120
    assert by_name["calculate-daily-metrics"]["depends_on"] == ["update-user-streaks"]
    assert all(row["eventbridge"] == to_eventbridge(row["cron"]) for row in data)
    now = datetime.now(UTC)
    assert all(now < datetime.fromisoformat(row["next_run"]) <= now + timedelta(days=31) for row in data)


def test_list_table_is_readable() -> None:
    result = jobctl(None, "list")
    assert result.exit_code == 0
    assert "cron(0/15 * * * ? *)" in result.stdout
    assert "At 03:00, on day 1 of the month" in result.stdout


def test_migrate_applies_pending_migrations_then_reports_up_to_date(empty_db_url: str) -> None:
    # --app-schema applies the reference app schema only, migrate the jobs layer only
    app = as_json(jobctl(empty_db_url, "migrate", "--app-schema", "--json"))
    assert app == {"applied": ["V001__reference_app.sql"]}
    first = as_json(jobctl(empty_db_url, "migrate", "--json"))
    assert "V009__jobs_layer_baseline.sql" in first["applied"]
    assert "V001__reference_app.sql" not in first["applied"]
    assert as_json(jobctl(empty_db_url, "migrate", "--json")) == {"applied": []}
    assert as_json(jobctl(empty_db_url, "migrate", "--app-schema", "--json")) == {"applied": []}
    assert jobctl(empty_db_url, "migrate").stdout.strip() == "database is up to date"


def test_migrate_refuses_a_database_without_the_app_and_says_what_is_missing(empty_db_url: str) -> None:
    result = jobctl(empty_db_url, "migrate")
    assert result.exit_code == 1, result.stdout
    assert "does not meet the jobs' contract" in result.stderr and "nothing was changed" in result.stderr
    assert "users: table missing (needed by " in result.stderr
    assert "jobctl migrate --app-schema" in result.stderr


# --------------------------------------------------------------------------- run


def test_run_goes_through_the_handler_and_logs_a_manual_run(db_url: str, conn: Any) -> None:
    # Given a user active on 2026-11-27
    user = make_user(conn)
    record_activity(conn, user, utc(2026, 11, 27, 12))
    # When update-user-streaks runs for 2026-11-28 00:00
    result = as_json(jobctl(db_url, "run", "update-user-streaks", "--as-of", "2026-11-28T00:00:00Z", "--json"))
    # Then the handler's result is printed and the run is logged as manual
    assert (result["job"], result["status"], result["as_of"], result["trigger"]) == (
        "update-user-streaks",
        "succeeded",
        "2026-11-28T00:00:00Z",
        "manual",
    )
    assert result["summary"]["streaks_incremented"] == 1
    assert records(conn, "SELECT job_name, status, trigger, as_of FROM cron_job_logs") == [
        {"job_name": "update-user-streaks", "status": "succeeded", "trigger": "manual", "as_of": utc(2026, 11, 28)}
    ]


def test_run_same_occurrence_again_is_skipped_unless_forced(db_url: str) -> None:
    args = ("run", "reset-daily-challenges", "--as-of", "2026-11-28", "--json")
    assert as_json(jobctl(db_url, *args))["status"] == "succeeded"
    again = as_json(jobctl(db_url, *args))
    assert again["status"] == "skipped" and again["reason"].startswith("duplicate")
    forced = as_json(jobctl(db_url, *args, "--force"))
    assert (forced["status"], forced["forced"]) == ("succeeded", True)


def test_run_dry_run_changes_nothing(db_url: str, conn: Any) -> None:
    result = as_json(jobctl(db_url, "run", "reset-daily-challenges", "--as-of", "2026-11-28", "--dry-run", "--json"))
    assert (result["status"], result["dry_run"]) == ("succeeded", True)
    assert records(conn, "SELECT count(*) AS n FROM daily_challenges") == [{"n": 0}]


def test_run_table_output(db_url: str) -> None:
    result = jobctl(db_url, "run", "cleanup-expired-sessions", "--as-of", "2026-11-28T10:15Z")
    assert result.exit_code == 0, result.stderr
    assert "succeeded" in result.stdout and "users_marked_offline" in result.stdout


def test_run_feeds_a_raw_lambda_event_file(db_url: str, conn: Any, tmp_path: Path) -> None:
    # Given the console's scheduled-event test payload
    event = json.loads((Path(__file__).parents[1] / "events" / "scheduled_event.json").read_text())
    event["time"] = "2026-11-27T00:00:00Z"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    # When fed as it is
    result = as_json(jobctl(db_url, "run", "update-user-streaks", "--event", str(path), "--json"))
    # Then it ran as a scheduled occurrence
    assert (result["trigger"], result["as_of"]) == ("schedule", "2026-11-27T00:00:00Z")


def test_a_failed_run_exits_1_with_one_line_and_is_logged(db_url: str, conn: Any) -> None:
    # Given no streak processing ever happened, metrics cannot compute yesterday
    result = jobctl(db_url, "run", "calculate-daily-metrics", "--as-of", "2026-11-28T01:00:00Z")
    assert_one_line_error(result, 1, "calculate-daily-metrics")
    assert records(conn, "SELECT job_name, status FROM cron_job_logs") == [
        {"job_name": "calculate-daily-metrics", "status": "failed"}
    ]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("run", "no-such-job"), "unknown job 'no-such-job'"),
        (("run", "update-user-streaks", "--as-of", "yesterday"), "is not a time"),
        (("run", "update-user-streaks", "--as-of", "2999-01-01"), "in the future"),
        (("logs", "no-such-job"), "unknown job"),
        (("simulate", "--start", "soon"), "is not a time"),
        (("simulate", "--start", "2999-01-01"), "future"),
        (("simulate", "--start", "9999-12-31"), "future"),  # no overflow computing the window's end
        (("simulate", "--start", "0001-01-02"), "before the year 2000"),
        (("simulate", "--start", "1999-12-31T23:00:00Z"), "before the year 2000"),
        (("simulate", "--start", "2026-11-01", "--job", "nope"), "unknown job"),
        (("scheduler", "--job", "nope"), "unknown job"),
    ],
)
def test_usage_errors_exit_2_with_one_line(db_url: str, args: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(jobctl(db_url, *args), 2, fragment)


@pytest.mark.parametrize("days", ["0", "-1"])
def test_simulate_refuses_fewer_than_one_day(days: str) -> None:
    # When a window of no day is asked for (no database needed: refused while parsing)
    result = jobctl(None, "simulate", "--start", "2026-11-01", "--days", days)
    # Then it is a usage error naming the option, and nothing ran
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "--days" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_simulated_window_itself_refuses_fewer_than_one_day() -> None:
    from jobctl.simulation import window
    from shared.errors import ValidationError

    with pytest.raises(ValidationError, match="--days 0: simulate at least 1 day"):
        window("2026-11-01", 0)
    assert window("2026-11-01", 2) == (utc(2026, 11, 1), utc(2026, 11, 3))


def test_bad_event_files_exit_2(db_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert_one_line_error(jobctl(db_url, "run", "update-user-streaks", "--event", str(broken)), 2, "not valid JSON")
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"as_of": "2026-11-01T00:00:00Z", "dryrun": true}')
    assert_one_line_error(
        jobctl(db_url, "run", "update-user-streaks", "--event", str(unknown)), 2, "unknown field 'dryrun'"
    )
    assert_one_line_error(
        jobctl(db_url, "run", "update-user-streaks", "--event", str(tmp_path / "none.json")),
        2,
        "cannot read event file",
    )


def test_database_errors_are_one_line_without_the_password() -> None:
    url = "postgresql://ops:Sup3rSecretPw@127.0.0.1:1/app"
    for args in (("logs",), ("stats",), ("run", "update-user-streaks")):
        result = jobctl(url, *args)
        assert_one_line_error(result, 1, "database")
        assert "Sup3rSecretPw" not in result.stderr + result.stdout


# --------------------------------------------------------------------------- logs, stats


def test_logs_and_stats(db_url: str) -> None:
    # Given two good runs and one failed run
    jobctl(db_url, "run", "reset-daily-challenges", "--as-of", "2026-11-27")
    jobctl(db_url, "run", "reset-daily-challenges", "--as-of", "2026-11-28")
    jobctl(db_url, "run", "calculate-daily-metrics", "--as-of", "2026-11-28T01:00Z")
    # Then logs lists them newest first, filters by job and failure, and limits
    all_logs = as_json(jobctl(db_url, "logs", "--json"))
    assert [(r["job_name"], r["status"]) for r in all_logs] == [
        ("calculate-daily-metrics", "failed"),
        ("reset-daily-challenges", "succeeded"),
        ("reset-daily-challenges", "succeeded"),
    ]
    assert [
        r["as_of"] for r in as_json(jobctl(db_url, "logs", "reset-daily-challenges", "--limit", "1", "--json"))
    ] == ["2026-11-28T00:00:00+00:00"]
    failed = as_json(jobctl(db_url, "logs", "--failed", "--json"))
    assert [r["job_name"] for r in failed] == ["calculate-daily-metrics"]
    assert "update-user-streaks" in failed[0]["error_message"]
    # and stats has the guide's columns
    stats = {r["job_name"]: r for r in as_json(jobctl(db_url, "stats", "--json"))}
    assert (stats["reset-daily-challenges"]["total_runs"], stats["reset-daily-challenges"]["successful_runs"]) == (2, 2)
    assert stats["calculate-daily-metrics"]["failed_runs"] == 1
    table = jobctl(db_url, "stats")
    assert table.exit_code == 0 and "reset-daily-challenges" in table.stdout
    assert "failed" in jobctl(db_url, "logs").stdout


# --------------------------------------------------------------------------- simulate


def test_simulate_a_week_fires_each_job_exactly_as_its_schedule_says(db_url: str, conn: Any) -> None:
    # Given a small app: users active before and during the week
    for n in range(20):
        user = make_user(conn)
        for day in range(0, 9, 1 + n % 3):
            record_activity(conn, user, utc(2026, 10, 30) + timedelta(days=day, hours=n), xp=10, messages=1)
    # When a week from Sunday 2026-11-01 00:00 is simulated
    result = jobctl(db_url, "simulate", "--start", "2026-11-01", "--days", "7", "--json")
    summary = as_json(result)
    # Then every job ran exactly as often as its cron says, each once per scheduled time
    expected = {
        "cleanup-expired-sessions": 672,
        "cleanup-expired-stories": 168,
        "update-leaderboards": 168,
        "process-moderation-queue": 168,
        "reset-daily-challenges": 7,
        "update-user-streaks": 7,
        "calculate-daily-metrics": 7,
        "send-daily-reminders": 7,
        "send-weekly-reports": 1,
        "cleanup-inactive-accounts": 1,
        "database-maintenance": 1,
    }
    counted = records(
        conn,
        """
        SELECT job_name, count(*) AS runs, count(DISTINCT as_of) AS occurrences,
               bool_and(status = 'succeeded') AS all_ok, bool_and(trigger = 'local') AS all_local,
               min(as_of) AS first, max(as_of) AS last
        FROM cron_job_logs GROUP BY job_name""",
    )
    assert {r["job_name"]: r["runs"] for r in counted} == expected
    assert all(r["occurrences"] == r["runs"] and r["all_ok"] and r["all_local"] for r in counted)
    by_job = {r["job_name"]: r for r in counted}
    assert by_job["send-weekly-reports"]["first"] == utc(2026, 11, 1)
    assert by_job["database-maintenance"]["first"] == utc(2026, 11, 1, 3)
    assert by_job["cleanup-expired-sessions"]["last"] == utc(2026, 11, 7, 23, 45)
    # and the printed summary agrees
    assert summary["runs"] == sum(expected.values()) and summary["failed"] == 0
    assert {j["job"]: j["succeeded"] for j in summary["jobs"]} == expected


def test_simulate_reports_a_failure_and_goes_on(db_url: str, conn: Any) -> None:
    # Given only calculate-daily-metrics is simulated: its dependency never ran, so each run fails
    result = jobctl(
        db_url,
        "simulate",
        "--start",
        "2026-11-01",
        "--days",
        "2",
        "--job",
        "calculate-daily-metrics",
        "--job",
        "reset-daily-challenges",
        "--json",
    )
    # Then the simulation went on past the failures, retried each once, and exits 1
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    jobs = {j["job"]: j for j in summary["jobs"]}
    assert (jobs["calculate-daily-metrics"]["failed"], jobs["calculate-daily-metrics"]["retried"]) == (2, 2)
    assert jobs["reset-daily-challenges"]["succeeded"] == 2
    assert records(
        conn,
        "SELECT status, count(*) AS n FROM cron_job_logs WHERE job_name = 'calculate-daily-metrics' GROUP BY status",
    ) == [{"status": "failed", "n": 4}]
    assert "failed calculate-daily-metrics" in result.stderr


# --------------------------------------------------------------------------- seed


def test_seed_wires_the_generator(db_url: str, conn: Any) -> None:
    pytest.importorskip("jobctl.seed")
    result = as_json(jobctl(db_url, "seed", "--users", "200", "--as-of", "2026-11-01", "--json"))
    assert result["rows"]["users"] == 200
    assert records(conn, "SELECT count(*) AS n FROM users") == [{"n": 200}]


# --------------------------------------------------------------------------- scheduler


def test_scheduler_command_fires_due_jobs_through_the_handler(
    db_url: str, conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the real-time scheduler on a fake clock at 00:59 that stops before 01:16
    from jobctl import schedules

    class FakeClockScheduler(schedules.Scheduler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.now = utc(2026, 11, 1, 0, 59)
            super().__init__(*args, **kwargs, clock=lambda: self.now, wait=self._advance)

        def _advance(self, seconds: float) -> bool:
            self.now += timedelta(seconds=seconds)
            return False

        def run(self, *, until: datetime | None = None) -> list[schedules.Outcome]:
            return super().run(until=utc(2026, 11, 1, 1, 16))

    monkeypatch.setattr(schedules, "Scheduler", FakeClockScheduler)
    # When `jobctl scheduler --json` runs for two jobs
    result = jobctl(db_url, "scheduler", "--job", "cleanup-expired-sessions", "--job", "update-leaderboards", "--json")
    # Then it fired 01:00 (both jobs, registry order) and 01:15, one JSON line per run, logged as 'local'
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    first, second = (j.name for j in registry.JOBS if j.name in {"cleanup-expired-sessions", "update-leaderboards"})
    assert [(r["at"], r["job"], r["status"]) for r in lines] == [
        ("2026-11-01T01:00:00+00:00", first, "succeeded"),
        ("2026-11-01T01:00:00+00:00", second, "succeeded"),
        ("2026-11-01T01:15:00+00:00", "cleanup-expired-sessions", "succeeded"),
    ]
    assert records(conn, "SELECT job_name, trigger FROM cron_job_logs ORDER BY id") == [
        {"job_name": first, "trigger": "local"},
        {"job_name": second, "trigger": "local"},
        {"job_name": "cleanup-expired-sessions", "trigger": "local"},
    ]
    assert "scheduler stopped after 3 run(s)" in result.stderr


def test_demo_activity_makes_a_daily_core_and_some_others_active_that_day(conn: Any) -> None:
    from jobctl import demo

    # Given 40 active users and one banned
    ids = [make_user(conn) for _ in range(40)]
    banned = make_user(conn, account_status="banned")
    # When the demo's activity for 2026-11-03 is recorded
    active = demo.demo_activity(conn, utc(2026, 11, 3))
    # Then every tenth user (the core) and no banned user was active, on that day only
    got = records(conn, "SELECT user_id, activity_date FROM user_daily_activity ORDER BY user_id")
    users = {r["user_id"] for r in got}
    assert active == len(got) and {r["activity_date"].isoformat() for r in got} == {"2026-11-03"}
    assert {i for i in ids if i % 10 == 0} <= users and banned not in users
