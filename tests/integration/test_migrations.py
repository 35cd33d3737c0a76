"""The migration runner: order, checksums, concurrent starts; and the schema the code expects."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shared import registry
from shared.db import connect
from shared.errors import MigrationError
from shared.migrations import discover, migrate, pending


def _write(folder: Path, name: str, sql: str) -> Path:
    path = folder / name
    path.write_text(sql)
    return path


@pytest.fixture
def dirs(tmp_path):
    versioned, functions = tmp_path / "migrations", tmp_path / "functions"
    versioned.mkdir()
    functions.mkdir()
    return versioned, functions


def test_applies_in_numeric_order_each_once(empty_db_url, dirs):
    versioned, functions = dirs
    # Given migrations whose names sort differently as text and as numbers
    _write(versioned, "V010__second.sql", "INSERT INTO t VALUES (10);")
    _write(versioned, "V002__first.sql", "CREATE TABLE t (v int); INSERT INTO t VALUES (2);")
    _write(functions, "f.sql", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT max(v) FROM t $$;")
    conn = connect(empty_db_url)
    # When migrating twice
    first = migrate(conn, discover(versioned, functions))
    second = migrate(conn, discover(versioned, functions))
    # Then each applied once, in numeric order, repeatable last
    assert first == ["V002__first.sql", "V010__second.sql", "f.sql"]
    assert second == []
    assert [r["v"] for r in conn.execute("SELECT v FROM t ORDER BY v").fetchall()] == [2, 10]
    assert conn.execute("SELECT f() AS f").fetchone()["f"] == 10


def test_a_changed_applied_migration_is_refused(empty_db_url, dirs):
    versioned, functions = dirs
    path = _write(versioned, "V001__t.sql", "CREATE TABLE t (v int);")
    conn = connect(empty_db_url)
    migrate(conn, discover(versioned, functions))
    path.write_text("CREATE TABLE t (v bigint);")
    with pytest.raises(MigrationError, match=r"V001__t\.sql was changed after it was applied"):
        migrate(conn, discover(versioned, functions))


def test_a_changed_function_file_is_reapplied(empty_db_url, dirs):
    versioned, functions = dirs
    path = _write(functions, "f.sql", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;")
    conn = connect(empty_db_url)
    migrate(conn, discover(versioned, functions))
    path.write_text("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;")
    assert migrate(conn, discover(versioned, functions)) == ["f.sql"]
    assert conn.execute("SELECT f() AS f").fetchone()["f"] == 2


def test_a_failing_migration_rolls_back_and_says_which(empty_db_url, dirs):
    versioned, functions = dirs
    _write(versioned, "V001__ok.sql", "CREATE TABLE ok (v int);")
    _write(versioned, "V002__bad.sql", "CREATE TABLE half (v int); SELECT no_such_column FROM ok;")
    conn = connect(empty_db_url)
    with pytest.raises(MigrationError, match=r"V002__bad\.sql failed and was rolled back"):
        migrate(conn, discover(versioned, functions))
    assert conn.execute("SELECT to_regclass('half') AS t").fetchone()["t"] is None
    assert [m.path.name for m in pending(conn, discover(versioned, functions))] == ["V002__bad.sql"]


def test_badly_named_migration_is_refused(dirs):
    versioned, functions = dirs
    _write(versioned, "001-init.sql", "")
    with pytest.raises(MigrationError, match=r"named V###__lower_snake_name\.sql"):
        discover(versioned, functions)


def test_two_copies_started_at_once_apply_each_migration_exactly_once(empty_db_url, dirs):
    versioned, functions = dirs
    # Given a slow migration with a side effect that would fail if applied twice
    _write(
        versioned,
        "V001__slow.sql",
        "CREATE TABLE once (v int PRIMARY KEY); SELECT pg_sleep(0.5); INSERT INTO once VALUES (1);",
    )
    _write(versioned, "V002__next.sql", "INSERT INTO once VALUES (2);")
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            conn = connect(empty_db_url)
            results.append(migrate(conn, discover(versioned, functions)))
            conn.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # When two copies start at once
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then neither failed and together they applied each file exactly once
    assert errors == []
    assert sorted(name for r in results for name in r) == ["V001__slow.sql", "V002__next.sql"]
    conn = connect(empty_db_url)
    assert [r["v"] for r in conn.execute("SELECT v FROM once ORDER BY v").fetchall()] == [1, 2]


def test_project_migrations_are_all_applied_by_the_template(conn):
    assert pending(conn) == []


GUIDE_QUERIES = [
    "SELECT * FROM v_recent_cron_jobs",
    "SELECT * FROM cron_job_logs WHERE status = 'failed' ORDER BY started_at DESC",
    "SELECT * FROM v_cron_job_stats",
    """SELECT
  job_name,
  started_at,
  error_message,
  metadata
FROM cron_job_logs
WHERE status = 'failed'
ORDER BY started_at DESC
LIMIT 10""",
    """SELECT
  job_name,
  AVG(execution_time_ms) as avg_ms,
  MAX(execution_time_ms) as max_ms
FROM cron_job_logs
WHERE started_at >= CURRENT_DATE - 7
GROUP BY job_name
ORDER BY avg_ms DESC""",
    "SELECT * FROM cron_job_logs WHERE job_name = 'your-job-name' AND status = 'failed' ORDER BY started_at DESC",
    """SELECT * FROM cron_job_logs
WHERE job_name = 'reset_daily_challenges'
ORDER BY started_at DESC
LIMIT 1""",
    "CREATE INDEX IF NOT EXISTS idx_users_last_active ON users(last_active_at) WHERE account_status = 'active'",
    "CREATE INDEX IF NOT EXISTS idx_messages_created ON messages(created_at) WHERE is_deleted = false",
    "UPDATE user_gamification SET current_streak = previous_streak_value WHERE updated_at >= '2026-01-01 00:00:00'",
    """SELECT EXISTS (
  SELECT FROM information_schema.tables
  WHERE table_name = 'your_table'
)""",
]


@pytest.mark.parametrize("query", GUIDE_QUERIES)
def test_the_guides_monitoring_and_troubleshooting_sql_runs_unchanged(conn, query):
    conn.execute(query)


def test_guide_views_have_the_guides_columns(conn):
    stats = conn.execute("SELECT * FROM v_cron_job_stats LIMIT 0")
    assert [c.name for c in stats.description][:6] == [
        "job_name",
        "total_runs",
        "successful_runs",
        "failed_runs",
        "avg_execution_time_ms",
        "last_run_at",
    ]
    recent = conn.execute("SELECT * FROM v_recent_cron_jobs LIMIT 0")
    assert {"job_name", "status", "started_at", "finished_at", "execution_time_ms", "error_message", "metadata"} <= {
        c.name for c in recent.description
    }


def test_guide_stats_view_counts_runs(conn):
    # Given 3 runs of one job: two succeeded (100 ms, 200 ms), one failed (300 ms)
    conn.execute("""
        INSERT INTO cron_job_logs (job_name, status, started_at, finished_at, execution_time_ms, trigger, as_of)
        VALUES ('j', 'succeeded', '2026-01-01', '2026-01-01', 100, 'manual', '2026-01-01'),
               ('j', 'succeeded', '2026-01-02', '2026-01-02', 200, 'manual', '2026-01-02'),
               ('j', 'failed',    '2026-01-03', '2026-01-03', 300, 'manual', '2026-01-03')""")
    row = conn.execute("SELECT * FROM v_cron_job_stats").fetchone()
    assert (row["total_runs"], row["successful_runs"], row["failed_runs"]) == (3, 2, 1)
    assert float(row["avg_execution_time_ms"]) == 200.0
    assert row["last_run_at"].isoformat().startswith("2026-01-03")


# The tables, columns and functions the code and the guide rely on.
EXPECTED_COLUMNS = {
    "users": {
        "id",
        "account_status",
        "last_active_at",
        "created_at",
        "is_staff",
        "reminders_enabled",
        "weekly_report_opt_out",
        "learning_language",
    },
    "messages": {"created_at", "is_deleted", "sender_id", "recipient_id"},
    "user_gamification": {
        "current_streak",
        "previous_streak_value",
        "updated_at",
        "longest_streak",
        "total_xp",
        "streak_day",
    },
    "cron_job_logs": {
        "id",
        "job_name",
        "status",
        "started_at",
        "finished_at",
        "execution_time_ms",
        "error_message",
        "metadata",
        "trigger",
        "as_of",
        "request_id",
        "forced",
        "dry_run",
        "deadline_at",
    },
    "notifications": {"user_id", "kind", "dedup_key", "payload"},
}


def test_migrations_produce_the_schema_the_code_expects(conn):
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
    ).fetchall()
    actual: dict[str, set[str]] = {}
    for r in rows:
        actual.setdefault(r["table_name"], set()).add(r["column_name"])
    for table, columns in EXPECTED_COLUMNS.items():
        assert columns <= actual.get(table, set()), f"{table} lacks {columns - actual.get(table, set())}"
    views = {r["matviewname"] for r in conn.execute("SELECT matviewname FROM pg_matviews").fetchall()}
    assert {"mv_global_leaderboard", "mv_weekly_leaderboard", "mv_language_leaderboard"} <= views


def test_every_registry_job_has_its_sql_functions(conn):
    functions = {
        r["proname"]
        for r in conn.execute("SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace").fetchall()
    }
    missing = [f for job in registry.JOBS for f in (job.sql_function, job.work_function) if f not in functions]
    assert missing == []


def test_the_guides_manual_test_then_check_the_logs_finds_the_run(conn):
    # Given the guide's "Testing Jobs Manually" section, pasted as is
    conn.execute("SELECT reset_daily_challenges();")
    conn.execute("SELECT update_user_streaks();")
    conn.execute("SELECT cleanup_expired_stories();")
    # When the guide's "Check the logs" query runs
    found = conn.execute("""SELECT * FROM cron_job_logs
WHERE job_name = 'reset_daily_challenges'
ORDER BY started_at DESC
LIMIT 1;""").fetchall()
    # Then it finds the hand run, logged with trigger 'sql' and its summary
    assert len(found) == 1 and found[0]["status"] == "succeeded" and found[0]["trigger"] == "sql"
    assert "challenges_created" in found[0]["metadata"]["summary"]


def test_a_hand_run_in_sql_never_overlaps_a_scheduled_run(conn):
    # Given a scheduled run of reset-daily-challenges holding the job's running slot
    conn.execute("""INSERT INTO cron_job_logs (job_name, status, trigger, as_of, deadline_at)
                    VALUES ('reset-daily-challenges', 'running', 'schedule', now(), now() + interval '1 hour')""")
    # When an operator runs the job by hand in SQL
    result = conn.execute("SELECT reset_daily_challenges() AS r").fetchone()["r"]
    # Then the hand run is skipped (and logged), not run concurrently
    assert result["status"] == "skipped"
    assert conn.execute("SELECT count(*) AS n FROM daily_challenges").fetchone()["n"] == 0
    assert (
        conn.execute("SELECT status FROM cron_job_logs WHERE job_name = 'reset_daily_challenges'").fetchone()["status"]
        == "skipped"
    )


def test_one_changed_function_file_reapplies_all_of_them_in_order(empty_db_url, dirs):
    # Given a later function file that adjusts what an earlier one creates
    versioned, functions = dirs
    a = _write(functions, "a.sql", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;")
    _write(functions, "zz.sql", "ALTER FUNCTION f() SECURITY DEFINER;")
    conn = connect(empty_db_url)
    migrate(conn, discover(versioned, functions))
    # When only the earlier file changes
    a.write_text("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;")
    applied = migrate(conn, discover(versioned, functions))
    # Then the later one is re-applied too, so its adjustment survives
    assert applied == ["a.sql", "zz.sql"]
    assert conn.execute("SELECT prosecdef FROM pg_proc WHERE proname = 'f'").fetchone()["prosecdef"] is True
