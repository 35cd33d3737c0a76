"""The migration runner: order, checksums, concurrent starts; and the schema the code expects."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shared import registry
from shared.db import connect
from shared.errors import MigrationError
from shared.migrations import discover, migrate, pending
from tests.factories import make_user, record_activity, rows, run_job, set_streak, utc


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


# The guide's monitoring and troubleshooting SQL, exactly as written, each with what it promises.
GUIDE_RECENT = "SELECT * FROM v_recent_cron_jobs"
GUIDE_FAILED = "SELECT * FROM cron_job_logs WHERE status = 'failed' ORDER BY started_at DESC"
GUIDE_STATS = "SELECT * FROM v_cron_job_stats"
GUIDE_ERRORS = """SELECT
  job_name,
  started_at,
  error_message,
  metadata
FROM cron_job_logs
WHERE status = 'failed'
ORDER BY started_at DESC
LIMIT 10"""
GUIDE_TIMES = """SELECT
  job_name,
  AVG(execution_time_ms) as avg_ms,
  MAX(execution_time_ms) as max_ms
FROM cron_job_logs
WHERE started_at >= CURRENT_DATE - 7
GROUP BY job_name
ORDER BY avg_ms DESC"""
GUIDE_JOB_FAILURES = (
    "SELECT * FROM cron_job_logs WHERE job_name = 'your-job-name' AND status = 'failed' ORDER BY started_at DESC"
)
GUIDE_CHECK_THE_LOGS = """SELECT * FROM cron_job_logs
WHERE job_name = 'reset_daily_challenges'
ORDER BY started_at DESC
LIMIT 1"""
GUIDE_INDEX_USERS = (
    "CREATE INDEX IF NOT EXISTS idx_users_last_active ON users(last_active_at) WHERE account_status = 'active'"
)
GUIDE_INDEX_MESSAGES = (
    "CREATE INDEX IF NOT EXISTS idx_messages_created ON messages(created_at) WHERE is_deleted = false"
)
GUIDE_ROLLBACK = (
    "UPDATE user_gamification SET current_streak = previous_streak_value WHERE updated_at >= '2026-01-01 00:00:00'"
)
GUIDE_TABLE_EXISTS = """SELECT EXISTS (
  SELECT FROM information_schema.tables
  WHERE table_name = 'your_table'
)"""

#: (job, status, ms, error, hours ago) of the run history the monitoring queries read
HISTORY = [
    ("reset-daily-challenges", "succeeded", 100, None, 48),
    ("reset-daily-challenges", "succeeded", 300, None, 24),
    ("update-user-streaks", "succeeded", 200, None, 26),
    ("update-user-streaks", "failed", 400, "streaks failed", 5),
    ("your-job-name", "succeeded", 50, None, 4),
    ("your-job-name", "failed", 70, "your job failed", 3),
    ("update-user-streaks", "succeeded", 9000, None, 24 * 10),  # before the last 7 days
]


def run_history(conn) -> list[dict]:
    """Insert HISTORY (finished runs, newest last) and return the rows."""
    return [
        conn.execute(
            """INSERT INTO cron_job_logs (job_name, status, started_at, finished_at, execution_time_ms,
                                          error_message, metadata, trigger, as_of)
               VALUES (%(job)s, %(status)s, now() - make_interval(hours => %(ago)s),
                       now() - make_interval(hours => %(ago)s), %(ms)s, %(error)s,
                       CASE WHEN %(error)s::text IS NULL THEN '{}' ELSE '{"sqlstate": "P0001"}' END::jsonb,
                       'schedule', now() - make_interval(hours => %(ago)s))
               RETURNING *""",
            {"job": job, "status": status, "ms": ms, "error": error, "ago": ago},
        ).fetchone()
        for job, status, ms, error, ago in HISTORY
    ]


def newest_first(history: list[dict], **match) -> list[int]:
    chosen = [r for r in history if all(r[k] == v for k, v in match.items())]
    return [r["id"] for r in sorted(chosen, key=lambda r: r["started_at"], reverse=True)]


def check_recent(conn):
    history = run_history(conn)
    result = conn.execute(GUIDE_RECENT)
    assert [c.name for c in result.description][:8] == [
        "id",
        "job_name",
        "status",
        "started_at",
        "finished_at",
        "execution_time_ms",
        "error_message",
        "metadata",
    ]
    assert [r["id"] for r in result.fetchall()] == newest_first(history)


def check_recent_keeps_the_last_100(conn):
    for _ in range(3):
        run_history(conn)
    # Given 121 runs, the latest 100 of them just now, one after the other
    latest = conn.execute(
        "INSERT INTO cron_job_logs (job_name, status, finished_at, trigger, as_of) "
        "SELECT 'j', 'succeeded', now(), 'schedule', now() - make_interval(mins => g) FROM generate_series(1, 100) g "
        "RETURNING id"
    ).fetchall()
    # Then the view shows those 100, newest first
    assert [r["id"] for r in conn.execute(GUIDE_RECENT).fetchall()] == sorted((r["id"] for r in latest), reverse=True)


def check_failed(conn):
    history = run_history(conn)
    assert [r["id"] for r in conn.execute(GUIDE_FAILED).fetchall()] == newest_first(history, status="failed")


def check_stats(conn):
    run_history(conn)
    result = conn.execute(GUIDE_STATS)
    assert [c.name for c in result.description][:6] == [
        "job_name",
        "total_runs",
        "successful_runs",
        "failed_runs",
        "avg_execution_time_ms",
        "last_run_at",
    ]
    stats = {r["job_name"]: (r["total_runs"], r["successful_runs"], r["failed_runs"]) for r in result.fetchall()}
    assert stats == {"reset-daily-challenges": (2, 2, 0), "update-user-streaks": (3, 2, 1), "your-job-name": (2, 1, 1)}
    avg = conn.execute("SELECT avg_execution_time_ms FROM v_cron_job_stats WHERE job_name = 'your-job-name'")
    assert float(avg.fetchone()["avg_execution_time_ms"]) == 60.0


def check_errors(conn):
    run_history(conn)
    result = conn.execute(GUIDE_ERRORS)
    assert [c.name for c in result.description] == ["job_name", "started_at", "error_message", "metadata"]
    assert [(r["job_name"], r["error_message"], r["metadata"]) for r in result.fetchall()] == [
        ("your-job-name", "your job failed", {"sqlstate": "P0001"}),
        ("update-user-streaks", "streaks failed", {"sqlstate": "P0001"}),
    ]


def check_times(conn):
    run_history(conn)
    result = conn.execute(GUIDE_TIMES)
    assert [c.name for c in result.description] == ["job_name", "avg_ms", "max_ms"]
    # the run ten days ago is left out; slowest on average first
    assert [(r["job_name"], float(r["avg_ms"]), float(r["max_ms"])) for r in result.fetchall()] == [
        ("update-user-streaks", 300.0, 400.0),
        ("reset-daily-challenges", 200.0, 300.0),
        ("your-job-name", 60.0, 70.0),
    ]


def check_job_failures(conn):
    history = run_history(conn)
    expected = newest_first(history, job_name="your-job-name", status="failed")
    assert len(expected) == 1
    assert [r["id"] for r in conn.execute(GUIDE_JOB_FAILURES).fetchall()] == expected


def check_the_logs_after_a_hand_run(conn):
    # Given the guide's "Test daily challenge reset", twice
    first = conn.execute("SELECT reset_daily_challenges() AS s").fetchone()["s"]
    conn.execute("SELECT reset_daily_challenges()")
    # Then "Check the logs" shows the latest hand run, with its summary
    [row] = conn.execute(GUIDE_CHECK_THE_LOGS).fetchall()
    latest = conn.execute("SELECT max(id) AS id FROM cron_job_logs").fetchone()["id"]
    assert (row["id"], row["job_name"], row["status"], row["trigger"]) == (
        latest,
        "reset_daily_challenges",
        "succeeded",
        "sql",
    )
    assert set(row["metadata"]["summary"]) == set(first)


def index_definition(conn, name: str) -> str:
    row = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (name,)).fetchone()
    assert row is not None, f"{name} is missing"
    return row["indexdef"]


def check_index_users(conn):
    before = index_definition(conn, "idx_users_last_active")
    conn.execute(GUIDE_INDEX_USERS)
    assert index_definition(conn, "idx_users_last_active") == before
    assert "(last_active_at) WHERE (account_status = 'active'::text)" in before


def check_index_messages(conn):
    before = index_definition(conn, "idx_messages_created")
    conn.execute(GUIDE_INDEX_MESSAGES)
    # the project's covering version (V006) stays: same name, key and predicate
    assert index_definition(conn, "idx_messages_created") == before
    assert "(created_at)" in before and "WHERE (is_deleted = false)" in before


def check_rollback(conn):
    # Given a streak the job raised from 3 to 4 (run 2026-11-28), and a row last changed in 2025
    # (no streak, not active: the job leaves it alone) whose previous value is 5
    raised, untouched = make_user(conn), make_user(conn)
    set_streak(conn, raised, 3)
    set_streak(conn, untouched, 0, 2)
    record_activity(conn, raised, utc(2026, 11, 27, 12))
    conn.execute("UPDATE user_gamification SET updated_at = '2025-06-01', previous_streak_value = 5")
    run_job(conn, "update-user-streaks", utc(2026, 11, 28))
    assert rows(conn, "SELECT user_id, current_streak FROM user_gamification ORDER BY 1") == [
        (raised, 4),
        (untouched, 0),
    ]
    # When the guide's rollback runs
    result = conn.execute(GUIDE_ROLLBACK)
    # Then the raised streak is back to 3 and the other row is untouched
    assert result.rowcount == 1
    assert rows(conn, "SELECT user_id, current_streak FROM user_gamification ORDER BY 1") == [
        (raised, 3),
        (untouched, 0),
    ]


def check_table_exists(conn):
    assert conn.execute(GUIDE_TABLE_EXISTS).fetchone() == {"exists": False}
    conn.execute("CREATE TABLE your_table (id int)")
    assert conn.execute(GUIDE_TABLE_EXISTS).fetchone() == {"exists": True}


GUIDE_CHECKS = {
    "recent runs": check_recent,
    "recent runs: the last 100": check_recent_keeps_the_last_100,
    "failed runs": check_failed,
    "statistics": check_stats,
    "error details": check_errors,
    "execution times": check_times,
    "a job's failures": check_job_failures,
    "check the logs": check_the_logs_after_a_hand_run,
    "index on users": check_index_users,
    "index on messages": check_index_messages,
    "streak rollback": check_rollback,
    "table exists": check_table_exists,
}


@pytest.mark.parametrize("check", GUIDE_CHECKS)
def test_the_guides_monitoring_and_troubleshooting_sql_runs_unchanged(conn, check):
    GUIDE_CHECKS[check](conn)


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
