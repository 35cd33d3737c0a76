"""A database migrated before the app and jobs layers were split upgrades cleanly.

The old migrations (V001..V008 and the function files, as they were at c1d95e9, copied into
tests/adoption/legacy_c1d95e9/) build the database; then today's code migrates it.
"""

from __future__ import annotations

import pytest

from shared.db import connect
from shared.migrations import discover, discover_app, migrate, pending
from tests.adoption.conftest import LEGACY
from tests.adoption.schema import differences, snapshot

TABLES_QUERY = """SELECT c.relname FROM pg_class c
                   WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
                     AND c.relname <> 'schema_migrations'
                   ORDER BY 1"""


def contents(conn, like: dict[str, list[dict]] | None = None) -> dict[str, list[dict]]:
    """Every row of every table (only the columns ``like`` has, when given), in a stable order."""
    out = {}
    for t in [r["relname"] for r in conn.execute(TABLES_QUERY).fetchall()]:
        rows = [r["j"] for r in conn.execute(f'SELECT to_jsonb(t) AS j FROM "{t}" t').fetchall()]
        if like is not None and like.get(t):
            keep = set(like[t][0])
            rows = [{k: v for k, v in r.items() if k in keep} for r in rows]
        out[t] = sorted(rows, key=repr)
    return out


@pytest.fixture
def before_the_split(empty_db_url):
    """A database migrated by c1d95e9's files, with data in the app and in the run log."""
    conn = connect(empty_db_url)
    migrate(conn, discover(LEGACY / "migrations", LEGACY / "functions"))
    conn.execute("""
        INSERT INTO users (username, email, created_at, last_active_at, account_status)
        SELECT 'u' || n, 'u' || n || '@example.test', '2026-10-01', '2026-11-19', 'active'
          FROM generate_series(1, 20) n;
        SELECT record_activity(id, '2026-11-19 10:00+00', 30, 2, 1) FROM users WHERE id <= 12;
        SELECT record_activity(id, '2026-11-20 09:00+00', 10, 1, 0) FROM users WHERE id <= 8;
        INSERT INTO challenge_templates (title) VALUES ('hello'), ('five messages');
        INSERT INTO user_reports (reporter_id, reported_user_id, created_at)
        SELECT n, 20, '2026-11-20 08:00+00' FROM generate_series(1, 3) n;
        INSERT INTO messages (conversation_id, sender_id, recipient_id, created_at)
        SELECT 1, 1, 2, '2026-11-19 12:00+00'::timestamptz + make_interval(mins => n) FROM generate_series(1, 5) n;
        SELECT update_user_streaks('2026-11-20 00:00+00');
        SELECT update_user_streaks('2026-11-21 00:00+00');
        SELECT reset_daily_challenges('2026-11-21 00:00+00');
        SELECT process_moderation_queue('2026-11-21 00:00+00');
        SELECT send_daily_reminders('2026-11-21 18:00+00');
        SELECT update_leaderboards('2026-11-21 01:00+00');
        INSERT INTO cron_job_logs (job_name, status, started_at, trigger, as_of, request_id, deadline_at)
        VALUES ('cleanup-expired-sessions', 'running', '2026-11-21 00:15:00.3+00', 'schedule',
                '2026-11-21 00:15+00', 'req-1', '2026-11-21 00:20+00');
    """)
    yield conn
    conn.close()


def test_the_old_app_schema_counts_as_applied_and_the_jobs_layer_changes_no_row(before_the_split):
    conn = before_the_split
    rows_before = contents(conn)
    applied_before = conn.execute("SELECT version, checksum, applied_at FROM schema_migrations").fetchall()
    # When today's code migrates it: the reference app schema, then the jobs layer
    app = migrate(conn, discover_app())
    jobs = migrate(conn)
    # Then the app schema is not applied again (it is V001 of before), the jobs layer's
    # baseline and the function files are, and nothing is left to apply
    assert app == []
    assert jobs == [m.path.name for m in discover()]
    assert jobs[0] == "V009__jobs_layer_baseline.sql"
    assert pending(conn, discover_app()) == [] and pending(conn) == []
    # And no row of any table changed (the run log, the streaks, the notifications ...)
    after = contents(conn, like=rows_before)
    assert {t: rows for t, rows in after.items() if t in rows_before} == rows_before
    assert all(rows == [] for t, rows in after.items() if t not in rows_before)  # later layers' new tables
    # And the old versioned migrations stay recorded as they were (function files are re-applied)
    recorded = {r["version"]: r for r in conn.execute("SELECT version, checksum, applied_at FROM schema_migrations")}
    old = [r for r in applied_before if not r["version"].startswith("R:")]
    assert len(old) == 8 and all(recorded[r["version"]] == r for r in old)
    # And a second run changes nothing
    assert migrate(conn, discover_app()) == [] and migrate(conn) == []


def test_the_upgraded_schema_is_the_schema_of_a_new_database(before_the_split, conn):
    upgraded = before_the_split
    migrate(upgraded, discover_app())
    migrate(upgraded)
    assert differences(snapshot(upgraded), snapshot(conn)) == {}


def test_the_jobs_run_on_the_upgraded_database(before_the_split):
    conn = before_the_split
    migrate(conn, discover_app())
    migrate(conn)
    # The next night's streaks build on the old ledger, and a hand run is logged as before
    summary = conn.execute("SELECT update_user_streaks('2026-11-22 00:00+00') AS s").fetchone()["s"]
    assert summary == {"days_processed": 1, "streaks_incremented": 0, "streaks_broken": 8}
    assert conn.execute("SELECT max(day) AS d FROM streak_days").fetchone()["d"].isoformat() == "2026-11-21"
    rank = conn.execute("SELECT * FROM leaderboard_rank(1, '2026-11-21 01:00+00')").fetchone()
    assert rank["total_xp"] == 40
