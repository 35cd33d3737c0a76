"""cleanup-inactive-accounts: active users with no activity for more than 180 days become
inactive (never deleted); everybody else is left alone."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from types import MappingProxyType

import psycopg
import pytest

from shared import execution, registry
from tests.factories import make_user, record_activity, rows, run_job, set_streak, utc

AS_OF = utc(2026, 12, 1, 2)  # the 1st of the month, 02:00 UTC, as scheduled
CUTOFF = AS_OF - timedelta(days=180)  # 2026-06-04 02:00 UTC
TICK = timedelta(microseconds=1)
EARLIER = utc(2026, 9, 1)


def users(conn: psycopg.Connection) -> list[tuple]:
    return rows(conn, "SELECT id, account_status, status_changed_at FROM users ORDER BY id")


def test_marks_only_active_users_idle_for_more_than_180_days(conn):
    # Given users around the 180-day boundary, never-active users, and users not in good standing
    idle = make_user(conn, created_at=utc(2025, 1, 1), last_active_at=CUTOFF - TICK)
    exactly = make_user(conn, created_at=utc(2025, 1, 1), last_active_at=CUTOFF)  # exactly 180 days: stays
    recent = make_user(conn, created_at=utc(2025, 1, 1), last_active_at=AS_OF - timedelta(days=1))
    never_old = make_user(conn, created_at=CUTOFF - TICK)  # never active, old account
    never_new = make_user(conn, created_at=CUTOFF)  # never active, exactly 180 days old: stays
    # last_active_at wins over created_at when present
    came_back = make_user(conn, created_at=utc(2024, 1, 1), last_active_at=AS_OF - timedelta(days=10))
    banned = make_user(
        conn,
        created_at=utc(2025, 1, 1),
        last_active_at=utc(2025, 2, 1),
        account_status="banned",
        status_changed_at=EARLIER,
    )
    deleted = make_user(
        conn,
        created_at=utc(2025, 1, 1),
        last_active_at=utc(2025, 2, 1),
        account_status="deleted",
        status_changed_at=EARLIER,
    )
    already = make_user(
        conn,
        created_at=utc(2025, 1, 1),
        last_active_at=utc(2025, 2, 1),
        account_status="inactive",
        status_changed_at=EARLIER,
    )

    summary = run_job(conn, "cleanup-inactive-accounts", AS_OF)

    assert summary == {"users_marked_inactive": 2}
    assert users(conn) == [
        (idle, "inactive", AS_OF),
        (exactly, "active", None),
        (recent, "active", None),
        (never_old, "inactive", AS_OF),
        (never_new, "active", None),
        (came_back, "active", None),
        (banned, "banned", EARLIER),
        (deleted, "deleted", EARLIER),
        (already, "inactive", EARLIER),
    ]


def test_nobody_is_deleted_and_second_run_changes_nothing(conn):
    for days in (400, 200, 181, 100):
        make_user(conn, created_at=utc(2024, 1, 1), last_active_at=AS_OF - timedelta(days=days))
    assert run_job(conn, "cleanup-inactive-accounts", AS_OF) == {"users_marked_inactive": 3}
    before = users(conn)
    assert len(before) == 4

    assert run_job(conn, "cleanup-inactive-accounts", AS_OF) == {"users_marked_inactive": 0}
    assert users(conn) == before


def test_threshold_comes_from_the_registry_param(conn):
    # Given a user idle 31 days and one idle 30 days, with a 30-day threshold
    idle = make_user(conn, created_at=utc(2024, 1, 1), last_active_at=AS_OF - timedelta(days=31))
    fine = make_user(conn, created_at=utc(2024, 1, 1), last_active_at=AS_OF - timedelta(days=30))
    job = registry.get("cleanup-inactive-accounts")
    job = dataclasses.replace(job, params=MappingProxyType({"inactive_days": 30}))

    summary = execution.execute(conn, job, AS_OF, deadline=time.monotonic() + 60)

    assert summary == {"users_marked_inactive": 1}
    assert users(conn) == [(idle, "inactive", AS_OF), (fine, "active", None)]


def test_dry_run_changes_nothing(conn):
    make_user(conn, created_at=utc(2024, 1, 1), last_active_at=utc(2025, 1, 1))
    before = users(conn)
    assert run_job(conn, "cleanup-inactive-accounts", AS_OF, dry_run=True) == {"users_marked_inactive": 1}
    assert users(conn) == before


def test_guide_call_is_logged(conn):
    make_user(conn, created_at=utc(2024, 1, 1), last_active_at=utc(2025, 1, 1))
    summary = conn.execute("SELECT cleanup_inactive_accounts(%s) AS s", (AS_OF,)).fetchone()["s"]
    assert summary == {"users_marked_inactive": 1}
    assert rows(conn, "SELECT job_name, status, trigger FROM cron_job_logs") == [
        ("cleanup_inactive_accounts", "succeeded", "sql")
    ]


def test_a_threshold_below_one_day_is_refused(conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="inactive_days"):
        conn.execute("SELECT job_cleanup_inactive_accounts(%s, 0)", (AS_OF,))


def test_the_cutoff_is_180_utc_days_under_a_new_york_session_across_dst(conn):
    # Given a caller whose session is in New York, where 180 calendar days before as_of
    # (2026-11-30 21:00 EST) cross the end of daylight saving time (2026-11-01)
    conn.execute("SET TimeZone = 'America/New_York'")
    idle = make_user(conn, created_at=utc(2025, 1, 1), last_active_at=CUTOFF - TICK)
    # within the hour a New York calendar would shift the cutoff by
    hour_early = make_user(conn, created_at=utc(2025, 1, 1), last_active_at=CUTOFF - timedelta(minutes=30))
    exactly = make_user(conn, created_at=utc(2025, 1, 1), last_active_at=CUTOFF)

    # When the job runs from that session
    summary = run_job(conn, "cleanup-inactive-accounts", AS_OF)

    # Then the cutoff is exactly 180 x 24 h before as_of, as in a UTC session
    assert summary == {"users_marked_inactive": 2}
    assert users(conn) == [(idle, "inactive", AS_OF), (hour_early, "inactive", AS_OF), (exactly, "active", None)]


def test_a_user_marked_inactive_who_is_active_again_is_back_in_good_standing_everywhere(conn):
    # Given users idle for a year, with streaks and XP, marked inactive by the job
    old = {"created_at": utc(2025, 1, 1), "last_active_at": utc(2025, 6, 1)}
    by_app, by_activity_row, by_last_active, still_away = (make_user(conn, **old) for _ in range(4))
    everyone = (by_app, by_activity_row, by_last_active, still_away)
    for user in everyone:
        set_streak(conn, user, 2, total_xp=50)
    assert run_job(conn, "cleanup-inactive-accounts", AS_OF) == {"users_marked_inactive": 4}
    # a late-recorded activity from before the job marked them leaves them inactive
    record_activity(conn, still_away, AS_OF - timedelta(days=1))

    # When three of them come back, each recorded by a different path: the app's
    # record_activity(), a bare user_daily_activity row, a bare users.last_active_at update
    back = utc(2026, 12, 3, 10)
    record_activity(conn, by_app, back, xp=5)
    conn.execute(
        "INSERT INTO user_daily_activity (user_id, activity_date, first_active_at, last_active_at)"
        " VALUES (%s, %s, %s, %s)",
        (by_activity_row, back.date(), back, back),
    )
    conn.execute("UPDATE users SET last_active_at = %s WHERE id = %s", (back, by_last_active))

    # Then they are in good standing again (since the activity that brought them back)
    assert users(conn) == [
        (by_app, "active", back),
        (by_activity_row, "active", back),
        (by_last_active, "active", back),
        (still_away, "inactive", AS_OF),
    ]
    # And they get reminders, weekly reports and places on the leaderboards
    run_job(conn, "send-daily-reminders", utc(2026, 12, 4, 18))
    run_job(conn, "update-leaderboards", utc(2026, 12, 4, 18))
    run_job(conn, "send-weekly-reports", utc(2026, 12, 6))
    notified = rows(
        conn, "SELECT kind, array_agg(user_id ORDER BY user_id) FROM notifications GROUP BY kind ORDER BY kind"
    )
    assert notified == [
        ("streak_reminder", [by_app, by_activity_row, by_last_active]),
        # (the third's activity row that week is derived from last_active_at by the jobs layer, V010)
        ("weekly_report", [by_app, by_activity_row, by_last_active]),
    ]
    assert [r[0] for r in rows(conn, "SELECT user_id FROM mv_global_leaderboard ORDER BY user_id")] == [
        by_app,
        by_activity_row,
        by_last_active,
    ]
    # And the next monthly run leaves them active
    assert run_job(conn, "cleanup-inactive-accounts", utc(2027, 1, 1, 2)) == {"users_marked_inactive": 0}
