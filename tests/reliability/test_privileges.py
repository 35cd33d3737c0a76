"""Least privilege: the jobs run as a member of scheduled_jobs_runner, which can do nothing else.

Migrations run as the schema owner (the fixtures' superuser here). The job role may
EXECUTE the jobs' work functions and completion checks (which run as their owner),
read and write the run log's outcome columns, and VACUUM the jobs' tables (Postgres
17+). Everything else is refused.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import psycopg
import pytest

from shared import registry, schedule_state
from shared.db import connect, get_connection
from shared.events import RunRequest, Trigger
from shared.migrations import FUNCTIONS_DIR, MIGRATIONS_DIR, discover, migrate
from shared.runner import Status, run
from shared.watchdog import check
from tests.factories import make_user, record_activity, utc
from tests.reliability.conftest import JOB_ROLE, as_user

AS_OF = utc(2026, 11, 1, 3, 0)  # a Sunday, the 1st: every job's schedule can fire on it


def seed_small(conn) -> None:
    """A few rows for every job to touch."""
    users = [make_user(conn, created_at=utc(2026, 10, 1)) for _ in range(4)]
    for uid in users:
        record_activity(conn, uid, utc(2026, 10, 31, 12), xp=10, messages=1)
    conn.execute("INSERT INTO challenge_templates (title) VALUES ('Say hello')")
    conn.execute("INSERT INTO stories (user_id, created_at) VALUES (%s, %s)", (users[0], utc(2026, 10, 30)))
    conn.execute(
        "INSERT INTO typing_indicators VALUES (1, %s, %s, %s)", (users[1], utc(2026, 10, 31), utc(2026, 10, 31, 0, 1))
    )
    conn.execute("INSERT INTO user_presence VALUES (%s, true, %s)", (users[2], utc(2026, 10, 31)))
    for reporter in users[1:]:
        conn.execute(
            "INSERT INTO user_reports (reporter_id, reported_user_id, created_at) VALUES (%s, %s, %s)",
            (reporter, users[0], utc(2026, 10, 31)),
        )


def test_every_job_runs_through_the_runner_as_the_job_role(conn, job_user_url, runner_on):
    # Given a little data and the runner connected as a login user in the job role
    seed_small(conn)
    runner_on(job_user_url)
    who = get_connection().execute("SELECT current_user AS u").fetchone()["u"]
    assert who.startswith("sjr_")
    notices: list[str] = []
    get_connection().add_notice_handler(lambda d: notices.append(f"{d.severity}: {d.message_primary}"))
    # When every job runs, in registry order (streaks before the metrics that depend on them)
    results = {job.name: run(RunRequest(job=job, as_of=AS_OF, trigger=Trigger.SCHEDULE)) for job in registry.JOBS}
    # Then every run succeeded and did its work
    assert {name: r.status for name, r in results.items()} == {job.name: Status.SUCCEEDED for job in registry.JOBS}
    assert results["process-moderation-queue"].summary["users_banned"] == 1
    assert results["cleanup-expired-stories"].summary["stories_deleted"] == 1
    order = [job.name for job in registry.JOBS]  # the banned user leaves the board if the ban came first
    banned_first = order.index("process-moderation-queue") < order.index("update-leaderboards")
    assert results["update-leaderboards"].summary["global_rows"] == (3 if banned_first else 4)
    # and VACUUM was allowed on every table (Postgres 17+: MAINTAIN); on 15/16 the job role (not
    # the owner) may vacuum none, and the summary says so (the owner's connection fixes that)
    version = conn.execute("SELECT current_setting('server_version_num')::int AS v").fetchone()["v"]
    maintenance = results["database-maintenance"].summary
    vacuumed = len(registry.get("database-maintenance").vacuum_tables) if version >= 170000 else 0
    assert maintenance["tables_vacuumed"] == vacuumed
    if version >= 170000:
        # (a non-owner's VACUUM warns "permission denied to vacuum ..., skipping it" and does nothing)
        assert [n for n in notices if n.startswith("WARNING") and "vacuum" in n.lower()] == []
    rows = conn.execute("SELECT job_name, status FROM cron_job_logs ORDER BY id").fetchall()
    assert [(r["job_name"], r["status"]) for r in rows] == [(job.name, "succeeded") for job in registry.JOBS]


def test_the_job_role_runs_failures_skips_and_the_watchdog(conn, job_user_url, runner_on):
    # Given the runner as the job role: a duplicate is recorded as skipped, a dependency failure as failed
    runner_on(job_user_url)
    metrics_job = registry.get("calculate-daily-metrics")
    with pytest.raises(Exception, match="needs update-user-streaks"):
        run(RunRequest(job=metrics_job, as_of=AS_OF, trigger=Trigger.SCHEDULE))
    streaks = registry.get("update-user-streaks")
    assert run(RunRequest(job=streaks, as_of=AS_OF, trigger=Trigger.SCHEDULE)).status is Status.SUCCEEDED
    assert run(RunRequest(job=streaks, as_of=AS_OF, trigger=Trigger.SCHEDULE)).status is Status.SKIPPED
    # and a run abandoned past its deadline is reaped by the next delivery (an UPDATE by the role)
    conn.execute(
        """INSERT INTO cron_job_logs (job_name, status, trigger, as_of, deadline_at)
                    VALUES ('update-user-streaks', 'running', 'schedule', %s, clock_timestamp() - interval '1 s')""",
        (AS_OF + timedelta(days=1),),
    )
    assert (
        run(RunRequest(job=streaks, as_of=AS_OF + timedelta(days=1), trigger=Trigger.SCHEDULE)).status
        is Status.SUCCEEDED
    )
    statuses = [r["status"] for r in conn.execute("SELECT status FROM cron_job_logs ORDER BY id").fetchall()]
    assert statuses == ["failed", "succeeded", "skipped", "failed", "succeeded"]
    # and the watchdog can read what it needs, and the runner can buffer an occurrence and pause a job
    with connect(job_user_url) as role_conn:
        found = check(role_conn, AS_OF)
        assert {job.name for job in found.jobs} == {job.name for job in registry.JOBS}
        assert schedule_state.buffer(role_conn, streaks, AS_OF) is True
        assert schedule_state.take_pending(role_conn, streaks) == AS_OF
        assert schedule_state.auto_pause(role_conn, streaks, note="three failures") is True
        assert schedule_state.state(role_conn, streaks).paused


APP_TABLES = [
    "users",
    "user_daily_activity",
    "user_gamification",
    "streak_days",
    "challenge_templates",
    "daily_challenges",
    "user_challenge_progress",
    "messages",
    "stories",
    "story_views",
    "story_reactions",
    "typing_indicators",
    "user_presence",
    "user_reports",
    "moderation_actions",
    "notifications",
    "daily_metrics",
    "job_batch_progress",  # written only by the batched jobs' functions (as their owner)
    "leaderboard_period",
    "mv_global_leaderboard",
    "mv_weekly_leaderboard",
    "mv_language_leaderboard",
    "schema_migrations",
]


def refused(url: str, statement: str, params=None) -> str:
    """Run ``statement`` as the job user; return the SQLSTATE it was refused with."""
    with psycopg.connect(url, autocommit=True) as c:
        try:
            c.execute(statement, params)
        except psycopg.Error as exc:
            return exc.sqlstate or "?"
    raise AssertionError(f"the job role was allowed to run: {statement}")


def test_the_app_tables_cover_the_schema(conn):
    names = {
        r["relname"]
        for r in conn.execute(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm', 'v', 'p')"""
        ).fetchall()
    }
    # every relation but the jobs layer's (the run log, its views, the pg_cron cutover record,
    # the job state) is in the list this file checks
    assert names - set(APP_TABLES) == {
        "cron_job_logs",
        "v_recent_cron_jobs",
        "v_cron_job_stats",
        "pg_cron_cutover",
        "job_schedule_state",
        "job_schedule_changes",
    }


@pytest.mark.parametrize("table", APP_TABLES)
def test_the_job_role_cannot_read_any_app_table(job_user_url, table):
    assert refused(job_user_url, f"SELECT * FROM {table} LIMIT 1") == "42501"  # insufficient_privilege


def test_the_job_role_cannot_read_emails_drop_alter_create_or_rewrite_history(conn, job_user_url):
    make_user(conn)
    conn.execute(
        "INSERT INTO cron_job_logs (job_name, status, trigger, as_of, finished_at) "
        "VALUES ('x-job', 'succeeded', 'schedule', now(), now())"
    )
    denied = "42501"
    assert refused(job_user_url, "SELECT email FROM users") == denied
    assert refused(job_user_url, "DROP TABLE users") == denied  # must be owner
    assert refused(job_user_url, "DROP TABLE cron_job_logs") == denied
    assert refused(job_user_url, "TRUNCATE cron_job_logs") == denied
    assert refused(job_user_url, "ALTER TABLE cron_job_logs ADD COLUMN x int") == denied
    assert refused(job_user_url, "DROP INDEX cron_job_logs_one_running_per_job") == denied
    assert refused(job_user_url, "CREATE TABLE mine (x int)") == denied
    assert refused(job_user_url, "CREATE FUNCTION job_mine() RETURNS int LANGUAGE sql AS 'SELECT 1'") == denied
    assert refused(job_user_url, "DELETE FROM cron_job_logs") == denied
    assert refused(job_user_url, "UPDATE cron_job_logs SET job_name = 'forged'") == denied
    assert refused(job_user_url, "UPDATE cron_job_logs SET as_of = now()") == denied
    assert refused(job_user_url, "UPDATE users SET account_status = 'banned'") == denied
    assert refused(job_user_url, "SELECT version, checksum FROM schema_migrations") == denied
    # the functions executable by PUBLIC (record_activity, the app's) run with the caller's rights,
    # so they give the role nothing more; logged_run and the guide's wrappers are the owner's only
    assert refused(job_user_url, "SELECT update_user_streaks()") == denied
    assert refused(job_user_url, "SELECT record_activity(1, now(), 1000000)") == denied
    alter = "ALTER FUNCTION job_update_user_streaks(timestamptz, integer) SECURITY INVOKER"
    assert refused(job_user_url, alter) == denied
    # and nothing was changed
    assert conn.execute("SELECT job_name FROM cron_job_logs").fetchall() == [{"job_name": "x-job"}]


def test_only_the_owner_and_the_job_role_may_execute_the_job_functions(conn, db_url, admin_url):
    # Given another login user that is NOT in the job role
    name = "not_a_job_user"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {name}")
        admin.execute(f"CREATE ROLE {name} LOGIN")
    try:
        other = as_user(db_url, name, "x")
        for job in registry.JOBS:
            assert refused(other, f"SELECT {job.work_function}(now())") == "42501", job.name
        assert refused(other, "SELECT streaks_done_for(now())") == "42501"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {name}")


def test_the_functions_the_role_may_execute_are_exactly_the_jobs_and_their_checks(conn):
    rows = conn.execute(
        """SELECT p.proname, p.prosecdef, p.proconfig
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND has_function_privilege(%s, p.oid, 'EXECUTE')
              AND NOT has_function_privilege('public', p.oid, 'EXECUTE')""",
        (JOB_ROLE,),
    ).fetchall()
    expected = {job.work_function for job in registry.JOBS} | {
        job.completion_check for job in registry.JOBS if job.completion_check
    }
    expected.add("pg_cron_jobs")  # who runs an occurrence: pg_cron's jobs as the owner sees them
    assert {r["proname"] for r in rows} == expected
    # each runs as its owner with a search_path no temporary object can hijack, in UTC
    for r in rows:
        assert r["prosecdef"] and r["proconfig"] == ["search_path=public, pg_temp", "TimeZone=UTC"], r["proname"]


def test_the_vacuum_grants_match_the_tables_database_maintenance_vacuums(conn):
    if conn.execute("SELECT current_setting('server_version_num')::int AS v").fetchone()["v"] < 170000:
        pytest.skip("MAINTAIN exists from Postgres 17")
    rows = conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')
             AND has_table_privilege(%s, c.oid, 'MAINTAIN')""",
        (JOB_ROLE,),
    ).fetchall()
    assert {r["relname"] for r in rows} == set(registry.get("database-maintenance").vacuum_tables)


def test_an_edited_job_file_keeps_running_as_its_owner(conn, tmp_path, job_user_url, runner_on):
    # Given a deployed database, and a later deploy that edits one job's SQL file
    functions = tmp_path / "functions"
    shutil.copytree(FUNCTIONS_DIR, functions)
    edited = functions / "update_user_streaks.sql"
    edited.write_text(edited.read_text() + "\n-- an edit\n")
    migrate(conn, discover(MIGRATIONS_DIR, functions))
    # Then the job still runs as the job role
    runner_on(job_user_url)
    job = registry.get("update-user-streaks")
    assert run(RunRequest(job=job, as_of=AS_OF, trigger=Trigger.SCHEDULE)).status is Status.SUCCEEDED
