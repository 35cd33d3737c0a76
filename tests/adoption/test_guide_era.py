"""A guide-era database (Supabase-shaped app with uuid users and RLS, the guide's run log of
the older shape with months of history, its views, one void function per job) is adopted in
place by `jobctl migrate`: every history row kept and counted, the guide's SQL still works."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from jobctl.databases import create_database, drop_database, with_database
from shared import registry
from shared.db import connect
from shared.migrations import migrate
from tests.adoption.conftest import GUIDE_ERA_APP, GUIDE_ERA_JOBS, apply_sql_file
from tests.conftest import create_database_from_template
from tests.factories import run_job, utc
from tests.integration import test_migrations as guide

#: The guide's monitoring and troubleshooting SQL, exactly as written.
GUIDE_SQL = [
    guide.GUIDE_RECENT,
    guide.GUIDE_FAILED,
    guide.GUIDE_STATS,
    guide.GUIDE_ERRORS,
    guide.GUIDE_TIMES,
    guide.GUIDE_JOB_FAILURES,
    guide.GUIDE_CHECK_THE_LOGS,
    guide.GUIDE_TABLE_EXISTS,
]


@pytest.fixture(scope="module")
def guide_era_template(admin_url: str) -> Iterator[str]:
    """A guide-era database, built once per module from the two SQL files, copied per test."""
    name = "guide_era_template"
    with connect(create_database(admin_url, name, replace=True)) as conn:
        apply_sql_file(conn, GUIDE_ERA_APP)
        apply_sql_file(conn, GUIDE_ERA_JOBS)
    yield name
    drop_database(admin_url, name)


@pytest.fixture
def guide_era(admin_url: str, guide_era_template: str) -> Iterator[psycopg.Connection]:
    name = create_database_from_template(admin_url, guide_era_template)
    conn = connect(with_database(admin_url, name))
    yield conn
    conn.close()
    drop_database(admin_url, name)


def _history(conn) -> list[dict]:
    return conn.execute(
        """SELECT id::text AS id, job_name::text, status::text, started_at, completed_at,
                  execution_time_ms, error_message, metadata
             FROM cron_job_logs ORDER BY id"""
    ).fetchall()


def test_every_history_row_is_kept_with_what_it_said(guide_era):
    conn = guide_era
    before = _history(conn)
    assert len(before) > 15_000  # months of history
    migrate(conn)
    after = {
        r["legacy_id"]: r
        for r in conn.execute(
            """SELECT legacy_id::text, id, job_name, status, started_at, finished_at, completed_at,
                      execution_time_ms, error_message, metadata, trigger, as_of
                 FROM cron_job_logs"""
        ).fetchall()
    }
    assert len(after) == len(before)
    for old in before:
        new = after[old["id"]]
        assert (new["job_name"], new["started_at"], new["error_message"] or None) == (
            old["job_name"],
            old["started_at"],
            old["error_message"] or (new["error_message"] if old["status"] == "running" else None),
        )
        assert new["status"] == {"success": "succeeded", "failed": "failed", "running": "failed"}[old["status"]]
        assert new["metadata"]["adopted_from_guide_era"] is True
        assert {k: v for k, v in new["metadata"].items() if k in (old["metadata"] or {})} == (old["metadata"] or {})
        if old["status"] == "success":
            assert new["metadata"]["legacy_status"] == "success"
        if old["status"] == "running":
            assert new["metadata"]["legacy_status"] == "running" and new["error_message"].startswith("abandoned")
        else:
            assert new["finished_at"] == old["completed_at"] == new["completed_at"]
            assert new["execution_time_ms"] == old["execution_time_ms"]
        assert (new["trigger"], new["as_of"]) == ("sql", old["started_at"])
    # ids are numbered in the order the runs started
    by_start = sorted(after.values(), key=lambda r: (r["started_at"], r["id"]))
    assert [r["id"] for r in by_start] == sorted(r["id"] for r in after.values())


def test_the_guides_views_count_every_historical_run(guide_era):
    conn = guide_era
    before = {r["job_name"]: r for r in conn.execute("SELECT * FROM v_cron_job_stats").fetchall()}
    running = {
        r["job_name"]: r["n"]
        for r in conn.execute("SELECT job_name, count(*) AS n FROM cron_job_logs WHERE status = 'running' GROUP BY 1")
    }
    migrate(conn)
    after = {r["job_name"]: r for r in conn.execute("SELECT * FROM v_cron_job_stats").fetchall()}
    assert set(after) == set(before)
    for job, old in before.items():
        new = after[job]
        assert new["successful_runs"] == old["successful_runs"]
        assert new["failed_runs"] == old["failed_runs"] + running.get(job, 0)
        assert new["total_runs"] == new["successful_runs"] + new["failed_runs"] == old["total_runs"]
        assert new["last_run_at"] == old["last_run_at"]
    recent = conn.execute("SELECT * FROM v_recent_cron_jobs").fetchall()
    assert len(recent) == 100 and recent[0]["started_at"] == max(r["last_run_at"] for r in after.values())


def test_the_guides_sql_runs_unchanged_after_adoption(guide_era):
    conn = guide_era
    failed_before = {
        r["id"] for r in conn.execute("SELECT id FROM cron_job_logs WHERE status IN ('failed', 'running')")
    }
    migrate(conn)
    for query in GUIDE_SQL:
        conn.execute(query)
    # Failed jobs only: every failed run of the guide era (and the two that never finished)
    failed = conn.execute(guide.GUIDE_FAILED).fetchall()
    assert {r["legacy_id"] for r in failed} == failed_before
    assert [r["started_at"] for r in failed] == sorted((r["started_at"] for r in failed), reverse=True)
    # The guide's index suggestions stay no-ops; its rollback statement runs
    for name, statement in (
        ("idx_users_last_active", guide.GUIDE_INDEX_USERS),
        ("idx_messages_created", guide.GUIDE_INDEX_MESSAGES),
    ):
        before = guide.index_definition(conn, name)
        conn.execute(statement)
        assert guide.index_definition(conn, name) == before
    conn.execute(guide.GUIDE_ROLLBACK)


def test_the_guides_functions_are_replaced_and_its_helpers_left_alone(guide_era):
    conn = guide_era
    migrate(conn)
    functions = {
        r["sig"]: r["ret"]
        for r in conn.execute(
            """SELECT p.oid::regprocedure::text AS sig, format_type(p.prorettype, NULL) AS ret
                 FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace"""
        ).fetchall()
    }
    for job in registry.JOBS:
        assert functions[f"{job.sql_function}(timestamp with time zone)"] == "jsonb"
        assert [s for s in functions if s.startswith(f"{job.sql_function}(")] == [
            f"{job.sql_function}(timestamp with time zone)"
        ]
    assert "log_cron_job_start(text)" in functions
    # The guide's "Testing Jobs Manually", pasted as is, then its "Check the logs"
    conn.execute("SELECT reset_daily_challenges();")
    conn.execute("SELECT update_user_streaks();")
    conn.execute("SELECT cleanup_expired_stories();")
    found = conn.execute(
        "SELECT * FROM cron_job_logs WHERE job_name = 'reset_daily_challenges' ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    assert found["status"] == "succeeded" and found["trigger"] == "sql"


def test_every_job_runs_on_the_adopted_uuid_keyed_app(guide_era):
    conn = guide_era
    migrate(conn)
    xp = "SELECT total_xp FROM user_gamification WHERE user_id = (SELECT id FROM users WHERE username = 'user2')"
    xp_before = conn.execute(xp).fetchone()["total_xp"]
    conn.execute(
        "SELECT record_activity(id, '2026-11-20 15:00+00', 25) FROM users WHERE username IN ('user1', 'user2')"
    )
    as_of = utc(2026, 11, 21)
    for job in registry.JOBS:
        if job.sql_function == "database_maintenance":
            continue  # VACUUM runs outside a transaction: covered through the runner
        run_job(conn, job.name, as_of)
    assert conn.execute("SELECT count(*) AS n FROM streak_days").fetchone()["n"] == 1
    rank = conn.execute(
        "SELECT * FROM leaderboard_rank((SELECT id FROM users WHERE username = 'user2'), '2026-11-21')"
    ).fetchone()
    assert rank["total_xp"] == xp_before + 25 and rank["global_rank"] is not None


def _streaks(conn) -> dict[str, int]:
    return {
        r["username"]: r["current_streak"]
        for r in conn.execute(
            "SELECT u.username, g.current_streak FROM users u JOIN user_gamification g ON g.user_id = u.id"
        ).fetchall()
    }


def test_streaks_survive_the_first_nights_after_adoption(guide_era):
    # Given the guide-era app, whose users were last active on 2026-11-20 (user12, inactive,
    # at 2026-11-21 00:00; user11 is banned), adopted during 2026-11-21
    conn = guide_era
    before = _streaks(conn)
    migrate(conn)
    # And the app, as it always has, only moves last_active_at: user1 is active on 2026-11-21
    conn.execute("UPDATE users SET last_active_at = '2026-11-21 10:00+00' WHERE username = 'user1'")
    # When the first night's streak run processes 2026-11-20
    run_job(conn, "update-user-streaks", utc(2026, 11, 21))
    # Then everyone active that day keeps (and extends) the streak; the banned user is left alone
    night1 = _streaks(conn)
    assert {u: night1[u] - before[u] for u in before if u not in ("user11", "user12")} == {
        f"user{n}": 1 for n in range(1, 11)
    }
    assert (night1["user11"], night1["user12"]) == (before["user11"], 0)
    # And the second night (2026-11-21) sees the day the app moved last_active_at to
    run_job(conn, "update-user-streaks", utc(2026, 11, 22))
    night2 = _streaks(conn)
    assert night2["user1"] == before["user1"] + 2 and night2["user12"] == 1
    assert [night2[f"user{n}"] for n in range(2, 11)] == [0] * 9
