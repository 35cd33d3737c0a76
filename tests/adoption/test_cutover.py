"""``jobctl cutover``: pg_cron's jobs that run a registry job move off pg_cron, and back.

The tests marked with the ``cron_url`` fixture run against the real pg_cron (scripts/test-pg15);
the others need only Postgres: which pg_cron job runs which registry job, and who runs an
occurrence once a cutover is recorded (the runner defers to pg_cron, the watchdog too).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from jobctl.cli import app
from shared import cutover, registry, watchdog
from shared.db import connect, reset_connection
from shared.events import RunRequest, Trigger
from shared.runner import Status, run
from tests.adoption.pgcron import cron_jobs, cron_url, migrate_all, schedule_guide_jobs
from tests.cli.test_aws_commands import aws_env, events
from tests.factories import utc

__all__ = ["aws_env", "cron_url", "events"]  # fixtures, imported for pytest

cli = CliRunner()


def jobctl(url: str, *args: str) -> Any:
    return cli.invoke(app, list(args), env={"DATABASE_URL": url})


@pytest.fixture(autouse=True)
def no_quiet_wait(monkeypatch):
    """These tests check what is unscheduled and restored, not when: no wait for mid-minute
    (tests/adoption/test_switch.py runs the real wait against pg_cron firing)."""
    monkeypatch.setattr(cutover, "_quiet_moment", lambda conn: None)


@pytest.mark.parametrize("second", [0.0, 3.5, 14.9, 15.0, 30.0, 50.0, 50.1, 59.99])
def test_the_cutover_acts_only_mid_minute_off_pg_crons_boundaries(second):
    wait = cutover.wait_for_quiet(second)
    assert 0 <= wait <= 25.1
    assert cutover.QUIET_FROM_S <= (second + wait) % 60 <= cutover.QUIET_UNTIL_S


# --------------------------------------------------------------------------- which jobs match


@pytest.mark.parametrize(
    ("jobname", "command", "expected"),
    [
        ("reset-daily-challenges", "SELECT reset_daily_challenges()", "reset-daily-challenges"),
        ("Reset-Daily-Challenges", "anything at all", "reset-daily-challenges"),
        ("update_user_streaks", "SELECT 1", "update-user-streaks"),
        ("nightly", "select  PUBLIC.update_user_streaks( ) ;", "update-user-streaks"),
        ("nightly", '  SELECT "public"."send_weekly_reports"();  ', "send-weekly-reports"),
        ("nightly", "SELECT * FROM cleanup_expired_sessions()", "cleanup-expired-sessions"),
        (None, "SELECT\n\tUpdate_Leaderboards()", "update-leaderboards"),
        ("nightly", "SELECT reset_daily_challenges(); DELETE FROM users", None),
        ("nightly", "SELECT reset_daily_challenges_v2()", None),
        ("nightly", "SELECT other_schema.reset_daily_challenges()", None),
        ("nightly", "SELECT my_own_job()", None),
        ("purge-old-drafts", "DELETE FROM drafts WHERE created_at < now() - interval '30 days'", None),
        (None, None, None),
    ],
)
def test_a_pg_cron_job_matches_by_its_name_or_a_command_that_only_calls_the_guides_function(jobname, command, expected):
    assert cutover.registry_job(jobname, command) == expected


# --------------------------------------------------------------------------- without pg_cron


def test_without_pg_cron_there_is_nothing_to_cut_over_or_undo(db_url, conn):
    for args in (("cutover",), ("cutover", "--dry-run"), ("cutover", "--undo")):
        result = jobctl(db_url, *args, "--json")
        assert result.exit_code == 0, result.stderr
        body = json.loads(result.stdout)
        assert body["pg_cron_installed"] is False and body["jobs"] == []
    result = jobctl(db_url, "cutover")
    assert result.exit_code == 0
    assert "pg_cron is not installed in this database: nothing to cut over" in result.stdout


@pytest.fixture
def runner_db(db_url, conn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    reset_connection()
    yield conn
    reset_connection()


def record_cutover(conn: psycopg.Connection, job: str, cut_at, restored_at=None) -> None:
    conn.execute(
        """INSERT INTO pg_cron_cutover (registry_job, jobid, jobname, schedule, command, database, username,
                                        active, cut_at, restored_at, restored_by)
           VALUES (%(job)s, 1, %(job)s, '0 * * * *', 'SELECT f()', current_database(), current_user, true,
                   %(cut)s, %(restored)s, CASE WHEN %(restored)s::timestamptz IS NOT NULL THEN 'someone' END)""",
        {"job": job, "cut": cut_at, "restored": restored_at},
    )


def test_the_runner_leaves_to_pg_cron_the_occurrences_before_the_cutover(runner_db):
    # Given update-leaderboards cut over at 12:00 and the cutover undone at 15:00, but no
    # pg_cron job runs it now (this server has no pg_cron; the switch test has the real one)
    job = registry.get("update-leaderboards")
    record_cutover(runner_db, job.name, utc(2026, 3, 2, 12), utc(2026, 3, 2, 15))

    def scheduled(hour: int) -> Status:
        return run(RunRequest(job=job, as_of=utc(2026, 3, 2, hour), trigger=Trigger.SCHEDULE)).status

    # When the rules deliver 11:00 (pg_cron's), 12:00 and 14:00 (ours) and 15:00 (nobody else's)
    # Then pg_cron's occurrence is recorded as skipped, without raising; the others run
    assert [scheduled(h) for h in (11, 12, 14, 15)] == [
        Status.SKIPPED,
        Status.SUCCEEDED,
        Status.SUCCEEDED,
        Status.SUCCEEDED,
    ]
    rows = runner_db.execute(
        "SELECT as_of, status, error_message FROM cron_job_logs WHERE job_name = %s ORDER BY as_of", (job.name,)
    ).fetchall()
    assert [(r["as_of"].hour, r["status"]) for r in rows] == [
        (11, "skipped"),
        (12, "succeeded"),
        (14, "succeeded"),
        (15, "succeeded"),
    ]
    assert "pg_cron runs occurrence 2026-03-02T11:00:00Z of update-leaderboards" in rows[0]["error_message"]
    # And an operator's explicit run is never deferred
    manual = RunRequest(job=job, as_of=utc(2026, 3, 2, 11), trigger=Trigger.MANUAL, explicit_as_of=True)
    assert run(manual).status is Status.SUCCEEDED


def test_the_watchdog_does_not_expect_the_occurrences_pg_cron_ran_before_the_cutover(conn):
    # Given a system deployed long ago, with every job cut over from pg_cron at 12:05 today
    now = utc(2026, 3, 2, 12, 20)
    conn.execute("UPDATE schema_migrations SET applied_at = %s", (now - timedelta(days=30),))
    for job in registry.JOBS:
        record_cutover(conn, job.name, utc(2026, 3, 2, 12, 5))
    # When the watchdog looks at 12:20 and at 12:40 (nothing logged by the runner)
    # Then the occurrences before 12:05 (pg_cron's) are neither missed nor caught up; 12:15 is due
    found = watchdog.check(conn, now)
    assert found.due == []
    later = watchdog.check(conn, utc(2026, 3, 2, 12, 40))
    assert [(d.job, d.as_of) for d in later.due] == [("cleanup-expired-sessions", utc(2026, 3, 2, 12, 15))]


# --------------------------------------------------------------------------- the real pg_cron


def test_cutover_moves_exactly_the_registry_jobs_and_undo_restores_them_exactly(cron_url):
    # Given a migrated database where the guide scheduled its jobs in pg_cron, plus the app's
    # own job, one unnamed job calling a guide function and one the operator paused
    migrate_all(cron_url)
    with connect(cron_url) as conn:
        schedule_guide_jobs(conn)
        conn.execute("SELECT cron.unschedule('update-leaderboards')")
        conn.execute("SELECT cron.schedule('0 * * * *', 'select public.update_leaderboards( );')")
        conn.execute(
            "SELECT cron.alter_job(jobid, active => false) FROM cron.job WHERE jobname = 'send-weekly-reports'"
        )
        before = cron_jobs(conn)
        assert cutover.both_schedule(conn) == sorted(j.name for j in registry.JOBS if j.name != "send-weekly-reports")

        # When the cutover runs dry: nothing changes
        dry = json.loads(jobctl(cron_url, "cutover", "--dry-run", "--json").stdout)
        assert dry["dry_run"] and len(dry["jobs"]) == 11
        assert cron_jobs(conn) == before
        assert conn.execute("SELECT count(*) AS n FROM pg_cron_cutover").fetchone()["n"] == 0

        # When it runs: the eleven are unscheduled and recorded; the app's job stays
        result = jobctl(cron_url, "cutover", "--json")
        assert result.exit_code == 0, result.stderr
        body = json.loads(result.stdout)
        assert sorted(j["registry_job"] for j in body["jobs"]) == sorted(registry.BY_NAME)
        assert [j["jobname"] for j in body["left_alone"]] == ["purge-old-drafts"]
        assert [r["jobname"] for r in conn.execute("SELECT jobname FROM cron.job").fetchall()] == ["purge-old-drafts"]
        recorded = conn.execute(
            "SELECT registry_job, jobname, schedule, command, database, username, active, cut_at, cut_by "
            "FROM pg_cron_cutover ORDER BY registry_job"
        ).fetchall()
        assert {r["cut_by"] for r in recorded} == {"postgres"}
        assert all(r["cut_at"].second == 0 and r["cut_at"].microsecond == 0 for r in recorded)
        weekly = next(r for r in recorded if r["registry_job"] == "send-weekly-reports")
        assert (weekly["jobname"], weekly["schedule"], weekly["active"]) == ("send-weekly-reports", "0 0 * * 0", False)
        unnamed = next(r for r in recorded if r["registry_job"] == "update-leaderboards")
        assert (unnamed["jobname"], unnamed["command"]) == (None, "select public.update_leaderboards( );")
        assert cutover.both_schedule(conn) == []

        # When it runs again: nothing to do
        again = json.loads(jobctl(cron_url, "cutover", "--json").stdout)
        assert again["jobs"] == [] and "nothing to cut over" in again["message"]

        # When it is undone: cron.job is as it was (new job ids), twice is once
        undone = json.loads(jobctl(cron_url, "cutover", "--undo", "--json").stdout)
        assert len(undone["jobs"]) == 11 and all(j["restored_at"] for j in undone["jobs"])
        assert cron_jobs(conn) == before
        assert json.loads(jobctl(cron_url, "cutover", "--undo", "--json").stdout)["jobs"] == []
        assert cron_jobs(conn) == before

        # And the cutover can be done again, recorded anew
        assert len(json.loads(jobctl(cron_url, "cutover", "--json").stdout)["jobs"]) == 11
        assert conn.execute("SELECT count(*) AS n FROM pg_cron_cutover").fetchone()["n"] == 22
        human = jobctl(cron_url, "cutover", "--undo")
        assert human.exit_code == 0 and "11 pg_cron job(s) restored" in human.stdout


def test_the_deploys_cutover_resource_cuts_over_on_create_and_undoes_on_delete(cron_url, monkeypatch):
    from functions import migrate
    from tests.factories import lambda_context

    # Given the guide's jobs in pg_cron, the migrate function pointed at the database
    migrate_all(cron_url)
    monkeypatch.setenv("DATABASE_URL", cron_url)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    reset_connection()
    with connect(cron_url) as conn:
        schedule_guide_jobs(conn)
        before = cron_jobs(conn)

        def event(request: str) -> dict:
            return {"RequestType": request, "ResourceProperties": {"Action": "pg-cron-cutover", "SqlHash": "x"}}

        # When CloudFormation creates the cutover resource (after the rules): pg_cron lets go
        created = migrate.handler(event("Create"), lambda_context("scheduled-jobs-migrate", remaining_s=60))
        assert created["Data"] == {"Jobs": "11", "Status": "cutover"}
        assert [r["jobname"] for r in cron_jobs(conn)] == ["purge-old-drafts"]
        # When a later deploy updates it: nothing more to do
        assert (
            migrate.handler(event("Update"), lambda_context("scheduled-jobs-migrate", remaining_s=60))["Data"]["Jobs"]
            == "0"
        )
        # When it is deleted (option off, or the stack destroyed): pg_cron schedules them again
        deleted = migrate.handler(
            {**event("Delete"), "PhysicalResourceId": "pg-cron-cutover"},
            lambda_context("scheduled-jobs-migrate", remaining_s=60),
        )
        assert deleted == {"PhysicalResourceId": "pg-cron-cutover", "Data": {"Jobs": "11", "Status": "undo"}}
        assert cron_jobs(conn) == before
    reset_connection()


def test_status_warns_while_pg_cron_and_eventbridge_both_schedule_a_job(cron_url, events):
    # Given the deployed rules (all but database-maintenance) and the guide's pg_cron jobs
    migrate_all(cron_url)
    with connect(cron_url) as conn:
        schedule_guide_jobs(conn)
        conn.execute("SELECT cron.unschedule('reset-daily-challenges')")
    # When status looks: every job scheduled by both is named (not the undeployed one)
    data = json.loads(cli.invoke(app, ["status", "--json"], env={"DATABASE_URL": cron_url}).stdout)
    both = sorted(set(registry.BY_NAME) - {"database-maintenance", "reset-daily-challenges"})
    assert data["also_scheduled_by_pg_cron"] == both
    human = cli.invoke(app, ["status"], env={"DATABASE_URL": cron_url})
    assert "warning: pg_cron and EventBridge both schedule" in " ".join(human.stderr.split())
    # And after the cutover, no warning
    assert jobctl(cron_url, "cutover").exit_code == 0
    data = json.loads(cli.invoke(app, ["status", "--json"], env={"DATABASE_URL": cron_url}).stdout)
    assert data["also_scheduled_by_pg_cron"] == []
