"""database-maintenance: VACUUM (ANALYZE) the job tables outside any transaction, and prune
finished cron_job_logs rows older than the retention period (default 90 days)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared import registry
from shared.db import close_quietly, connect
from tests.factories import make_user, rows, run_job, utc
from tests.reliability.conftest import JOB_ROLE, as_user

AS_OF = utc(2026, 12, 1, 3)  # the 1st of the month, 03:00 UTC, as scheduled
TABLES = registry.get("database-maintenance").vacuum_tables
CUTOFF = AS_OF - timedelta(days=90)
TICK = timedelta(microseconds=1)


def log(conn: psycopg.Connection, started_at: datetime, status: str = "succeeded", job: str = "some-job") -> int:
    finished = None if status == "running" else started_at + timedelta(seconds=1)
    return conn.execute(
        "INSERT INTO cron_job_logs (job_name, status, started_at, finished_at, trigger, as_of)"
        " VALUES (%s, %s, %s, %s, 'schedule', %s) RETURNING id",
        (job, status, started_at, finished, started_at),
    ).fetchone()["id"]


def log_ids(conn: psycopg.Connection) -> list[int]:
    return [r[0] for r in rows(conn, "SELECT id FROM cron_job_logs ORDER BY id")]


def vacuum_stats(conn: psycopg.Connection, table: str) -> tuple:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return rows(conn, "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = %s", (table,))[0]


def test_prunes_finished_logs_older_than_90_days(conn):
    # Given finished rows just past the retention boundary, one exactly at it, recent ones,
    # and an old row still 'running' (a crashed run: never pruned by age here)
    old = [log(conn, CUTOFF - TICK, status) for status in ("succeeded", "failed", "skipped")]
    ancient = log(conn, utc(2025, 1, 1))
    stuck = log(conn, utc(2025, 1, 1), "running")
    exactly = log(conn, CUTOFF)
    recent = log(conn, AS_OF - timedelta(days=1), "failed")

    summary = run_job(conn, "database-maintenance", AS_OF)

    assert summary == {"tables_vacuumed": len(TABLES), "tables_skipped": 0, "logs_deleted": 4}
    assert log_ids(conn) == [stuck, exactly, recent]
    assert len(old) == 3 and ancient not in log_ids(conn)


def test_vacuum_analyze_runs_outside_a_transaction_and_is_visible_in_the_stats(conn):
    # Given a fresh database whose job tables were never vacuumed or analyzed
    make_user(conn)
    assert vacuum_stats(conn, "notifications") == (None, None)

    # When the job runs the way the runner runs it (no "cannot run inside a transaction block")
    summary = run_job(conn, "database-maintenance", AS_OF)

    # Then every job table was vacuumed and analyzed
    assert summary["tables_vacuumed"] == len(TABLES) > 0
    for table in ("notifications", "users", "cron_job_logs", "stories"):
        last_vacuum, last_analyze = vacuum_stats(conn, table)
        assert last_vacuum is not None and last_analyze is not None, table


def test_the_vacuum_list_names_only_existing_tables(conn):
    missing = set(TABLES) - {r[0] for r in rows(conn, "SELECT tablename FROM pg_tables")}
    assert missing == set()


def test_second_run_with_same_as_of_deletes_nothing(conn):
    log(conn, CUTOFF - TICK)
    keep = [log(conn, AS_OF - timedelta(days=d)) for d in (1, 89)]
    assert run_job(conn, "database-maintenance", AS_OF)["logs_deleted"] == 1

    summary = run_job(conn, "database-maintenance", AS_OF)

    assert summary["logs_deleted"] == 0
    assert log_ids(conn) == keep


def test_dry_run_deletes_nothing_and_does_not_vacuum(conn):
    old = log(conn, CUTOFF - TICK)

    summary = run_job(conn, "database-maintenance", AS_OF, dry_run=True)

    assert summary["logs_deleted"] == 1
    assert log_ids(conn) == [old]
    assert vacuum_stats(conn, "notifications") == (None, None)


def test_guide_call_prunes_only_and_is_logged(conn):
    # Given an old log row; When an operator runs the guide's SELECT database_maintenance()
    log(conn, CUTOFF - timedelta(days=10))
    summary = conn.execute("SELECT database_maintenance(%s) AS s", (AS_OF,)).fetchone()["s"]

    # Then the logs are pruned, no VACUUM ran (Postgres refuses it inside a function),
    # and the call left its own row
    assert summary == {"tables_vacuumed": 0, "logs_deleted": 1}
    assert rows(conn, "SELECT job_name, status, trigger FROM cron_job_logs") == [
        ("database_maintenance", "succeeded", "sql")
    ]


def test_vacuum_inside_a_function_is_indeed_refused(conn):
    # Why the VACUUM lives in the runner: this is what a pg_cron-era function would hit
    conn.execute("""CREATE FUNCTION try_vacuum() RETURNS void LANGUAGE plpgsql
                    AS $$ BEGIN EXECUTE 'VACUUM notifications'; END $$""")
    with pytest.raises(psycopg.errors.ActiveSqlTransaction):
        conn.execute("SELECT try_vacuum()")


def test_retention_below_one_day_is_refused(conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="retention_days"):
        conn.execute("SELECT job_database_maintenance(%s, 0)", (AS_OF,))


def test_retention_is_90_utc_days_under_a_new_york_session_across_dst(conn):
    # Given a caller in New York, where 90 calendar days before as_of (2026-11-30 22:00 EST)
    # cross the end of daylight saving time: a New York cutoff would be an hour earlier
    conn.execute("SET TimeZone = 'America/New_York'")
    in_the_hour = log(conn, CUTOFF - timedelta(minutes=30))
    exactly = log(conn, CUTOFF)
    # When the job's transactional part runs from that session
    summary = conn.execute("SELECT job_database_maintenance(%s) AS s", (AS_OF,)).fetchone()["s"]
    # Then the cutoff is exactly 90 x 24 h before as_of
    assert summary["logs_deleted"] == 1
    assert log_ids(conn) == [exactly]
    assert in_the_hour not in log_ids(conn)


@pytest.fixture
def job_conn(db_url: str, admin_url: str) -> Iterator[psycopg.Connection]:
    """A connection as a login user in the job role (as the Lambdas connect), not the owner."""
    name = f"sjr_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw-{name}' IN ROLE {JOB_ROLE}")
    # straight to the server, like the admin (a pooler under test knows only its own users)
    direct = make_conninfo(admin_url, dbname=conninfo_to_dict(db_url)["dbname"])
    job = connect(as_user(direct, name, f"pw-{name}"))
    yield job
    close_quietly(job)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        admin.execute(f"DROP ROLE IF EXISTS {name}")


def server_version(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT current_setting('server_version_num')::int AS v").fetchone()["v"]


def test_tables_the_job_role_may_not_vacuum_are_reported_skipped_with_the_reason(conn, job_conn, monkeypatch):
    # Given the job role without the right to vacuum users (Postgres 17+: MAINTAIN revoked on
    # it; Postgres 15/16, where only a table's owner may vacuum it: none of the tables)
    monkeypatch.delenv("MAINTENANCE_DATABASE_URL", raising=False)
    modern = server_version(conn) >= 170000
    if modern:
        conn.execute(f"REVOKE MAINTAIN ON users FROM {JOB_ROLE}")
    # When the job runs as the job role
    summary = run_job(job_conn, "database-maintenance", AS_OF)
    # Then the summary counts only the tables really vacuumed, and names the others with why
    not_allowed = {"users"} if modern else set(TABLES)
    assert summary["tables_vacuumed"] == len(TABLES) - len(not_allowed)
    assert summary["tables_skipped"] == len(not_allowed)
    assert set(summary["skipped"]) == not_allowed
    reason = summary["skipped"]["users"]
    assert ("MAINTAIN" in reason) if modern else ("owner" in reason), reason
    # and the statistics agree: users was not vacuumed
    assert vacuum_stats(conn, "users")[0] is None
    if modern:
        assert vacuum_stats(conn, "notifications")[0] is not None


def test_with_the_owners_connection_maintenance_vacuums_every_table(conn, job_conn, db_url, monkeypatch):
    # Given the job role may vacuum nothing itself (as on Postgres 15/16, Supabase's), and the
    # recommended deployment's owner connection for this job (MAINTENANCE_DATABASE_URL)
    if server_version(conn) >= 170000:
        conn.execute(f"REVOKE MAINTAIN ON ALL TABLES IN SCHEMA public FROM {JOB_ROLE}")
    monkeypatch.setenv("MAINTENANCE_DATABASE_URL", db_url)
    old = log(conn, CUTOFF - TICK)
    # When the job runs as the job role
    summary = run_job(job_conn, "database-maintenance", AS_OF)
    # Then every table was really vacuumed and analyzed, and the logs pruned by the job role
    assert summary == {"tables_vacuumed": len(TABLES), "tables_skipped": 0, "logs_deleted": 1}
    for table in TABLES:
        assert vacuum_stats(conn, table)[0] is not None, table
    assert old not in log_ids(conn)


def test_a_dry_run_reports_what_it_would_vacuum_and_skip(conn, job_conn, monkeypatch):
    monkeypatch.delenv("MAINTENANCE_DATABASE_URL", raising=False)
    if server_version(conn) >= 170000:
        conn.execute(f"REVOKE MAINTAIN ON users, notifications FROM {JOB_ROLE}")
        expected = 2
    else:
        expected = len(TABLES)
    summary = run_job(job_conn, "database-maintenance", AS_OF, dry_run=True)
    assert (summary["tables_vacuumed"], summary["tables_skipped"]) == (len(TABLES) - expected, expected)
    assert vacuum_stats(conn, "stories") == (None, None)
