"""send-weekly-reports: the 7 whole UTC days before as_of's date, one report per active user per ISO week."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest

from tests.factories import challenge_progress, make_user, record_activity, rows, run_job, send_message, set_streak, utc

JOB = "send-weekly-reports"
AS_OF = utc(2026, 11, 29)  # Sunday 00:00: reports Sunday 11-22 .. Saturday 11-28, ISO week 2026-W48
START, END = utc(2026, 11, 22), utc(2026, 11, 29)
JUST_BEFORE = START - timedelta(microseconds=1)


def completed(conn: psycopg.Connection, user_id: int, at: datetime | None) -> None:
    challenge_progress(conn, user_id, at, date(2026, 11, 25))


def reports(conn: psycopg.Connection) -> list[tuple]:
    return rows(
        conn,
        """SELECT user_id, dedup_key, payload, created_at FROM notifications
                          WHERE kind = 'weekly_report' ORDER BY user_id, dedup_key""",
    )


def payload(week: str, start: str, end: str, sent: int, partners: int, challenges: int, xp: int, streak: int) -> dict:
    return {
        "week": week,
        "period_start": start,
        "period_end": end,
        "messages_sent": sent,
        "conversation_partners": partners,
        "challenges_completed": challenges,
        "xp_gained": xp,
        "current_streak": streak,
    }


def test_one_report_per_active_user_with_the_weeks_exact_figures(conn):
    # Given
    main, friend, listener, late = (make_user(conn) for _ in range(4))
    opted_out = make_user(conn, weekly_report_opt_out=True)
    banned = make_user(conn, account_status="banned")
    inactive = make_user(conn, account_status="inactive")
    deleted = make_user(conn, account_status="deleted")
    outsider = make_user(conn)
    # activity: main on the first and the last day, and outside the window on both sides
    record_activity(conn, main, START, xp=10)
    record_activity(conn, main, END - timedelta(seconds=1), xp=5)
    record_activity(conn, main, JUST_BEFORE, xp=50)
    record_activity(conn, main, END, xp=100)
    record_activity(conn, friend, utc(2026, 11, 28, 23, 59, 59))
    record_activity(conn, late, END)  # only after the window: no report
    record_activity(conn, outsider, JUST_BEFORE)  # only before the window: no report
    for user in (opted_out, banned, inactive, deleted):
        record_activity(conn, user, utc(2026, 11, 25, 12), xp=7)
    set_streak(conn, main, 4, 9, total_xp=165)
    # messages: main sends 4 in the window (3 to friend, 1 to listener), receives 1 from opted_out;
    # outside the window or deleted: not counted
    send_message(conn, main, friend, START)
    send_message(conn, main, friend, utc(2026, 11, 24, 10))
    send_message(conn, main, friend, END - timedelta(microseconds=1))
    send_message(conn, main, listener, utc(2026, 11, 26, 10))
    send_message(conn, opted_out, main, utc(2026, 11, 27, 10))
    send_message(conn, main, outsider, utc(2026, 11, 26, 11), deleted=True)
    send_message(conn, main, late, JUST_BEFORE)
    send_message(conn, main, late, END)
    send_message(conn, friend, main, utc(2026, 11, 25, 8))
    completed(conn, main, utc(2026, 11, 25, 12))
    completed(conn, main, JUST_BEFORE)
    completed(conn, main, END)
    completed(conn, main, None)
    completed(conn, friend, END - timedelta(seconds=1))

    # When
    summary = run_job(conn, JOB, AS_OF)

    # Then main and friend (the only eligible users active in the window) get their week
    assert summary == {"notifications_created": 2, "active_users": 6}
    assert reports(conn) == [
        (main, "2026-W48", payload("2026-W48", "2026-11-22", "2026-11-28", 4, 3, 1, 15, 4), AS_OF),
        (friend, "2026-W48", payload("2026-W48", "2026-11-22", "2026-11-28", 1, 1, 1, 0, 0), AS_OF),
    ]


def test_second_run_changes_nothing(conn):
    user = make_user(conn)
    record_activity(conn, user, utc(2026, 11, 25), xp=3)
    assert run_job(conn, JOB, AS_OF) == {"notifications_created": 1, "active_users": 1}
    before = rows(conn, "SELECT x::text FROM notifications x ORDER BY 1")
    assert run_job(conn, JOB, AS_OF) == {"notifications_created": 0, "active_users": 1}
    assert run_job(conn, JOB, AS_OF + timedelta(hours=5)) == {"notifications_created": 0, "active_users": 1}
    assert rows(conn, "SELECT x::text FROM notifications x ORDER BY 1") == before


def test_consecutive_sundays_report_every_day_exactly_once(conn):
    # Given activity at the last second of Saturday and the first second of Sunday
    user = make_user(conn)
    record_activity(conn, user, utc(2026, 11, 28, 23, 59, 59), xp=1)
    record_activity(conn, user, utc(2026, 11, 29, 0, 0), xp=20)
    # When the two Sunday runs happen
    run_job(conn, JOB, utc(2026, 11, 29))
    run_job(conn, JOB, utc(2026, 12, 6))
    # Then Saturday counts in the first week only, Sunday in the second only
    assert [(key, p["period_start"], p["period_end"], p["xp_gained"]) for _, key, p, _ in reports(conn)] == [
        ("2026-W48", "2026-11-22", "2026-11-28", 1),
        ("2026-W49", "2026-11-29", "2026-12-05", 20),
    ]


@pytest.mark.parametrize(
    ("as_of", "week", "first", "last"),
    [
        (utc(2027, 1, 3), "2026-W53", "2026-12-27", "2027-01-02"),  # 2026 has 53 ISO weeks
        (utc(2028, 1, 2), "2027-W52", "2027-12-26", "2028-01-01"),  # Jan 1 in the previous ISO year
        (utc(2026, 1, 4), "2026-W01", "2025-12-28", "2026-01-03"),  # a window across the year end in W01
        (utc(2028, 3, 5), "2028-W09", "2028-02-27", "2028-03-04"),  # contains the leap day
    ],
)
def test_the_week_key_and_window_at_year_ends_and_leap_years(conn, as_of, week, first, last):
    # Given activity on the window's first and last days, and on the days just outside
    start = datetime.combine(date.fromisoformat(first), time(0), tzinfo=UTC)
    end = datetime.combine(date.fromisoformat(last) + timedelta(days=1), time(0), tzinfo=UTC)
    user = make_user(conn)
    record_activity(conn, user, start, xp=1)
    record_activity(conn, user, end - timedelta(seconds=1), xp=2)
    record_activity(conn, user, start - timedelta(seconds=1), xp=40)
    record_activity(conn, user, end, xp=80)
    if week == "2028-W09":
        record_activity(conn, user, utc(2028, 2, 29, 12), xp=4)
    # When
    run_job(conn, JOB, as_of)
    # Then
    xp = 7 if week == "2028-W09" else 3
    assert reports(conn) == [(user, week, payload(week, first, last, 0, 0, 0, xp, 0), as_of)]


def test_the_guides_sql_call_logs_its_run(conn):
    record_activity(conn, make_user(conn), utc(2026, 11, 25))
    assert conn.execute("SELECT send_weekly_reports('2026-11-29T00:00:00Z') AS r").fetchone()["r"] == {
        "notifications_created": 1,
        "active_users": 1,
    }
    assert rows(conn, "SELECT job_name, status, trigger, as_of FROM cron_job_logs") == [
        ("send_weekly_reports", "succeeded", "sql", AS_OF)
    ]
