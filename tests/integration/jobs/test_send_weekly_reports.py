"""send-weekly-reports: the last complete Sunday-to-Saturday UTC week at as_of, one report per active user
per week, labelled by the days it covers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest

from tests.factories import challenge_progress, make_user, record_activity, rows, run_job, send_message, set_streak, utc

JOB = "send-weekly-reports"
AS_OF = utc(2026, 11, 29)  # Sunday 00:00: reports Sunday 11-22 .. Saturday 11-28
WEEK = "2026-11-22/2026-11-28"
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
    # (marked inactive after its activity below, so that activity does not bring it back)
    inactive = make_user(conn, account_status="inactive", status_changed_at=utc(2026, 12, 1))
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
    # (streaks as they stand at the week's end: both were active on the Saturday, which
    # update-user-streaks has not processed yet, so one more day each)
    assert reports(conn) == [
        (main, WEEK, payload(WEEK, "2026-11-22", "2026-11-28", 4, 3, 1, 15, 5), AS_OF),
        (friend, WEEK, payload(WEEK, "2026-11-22", "2026-11-28", 1, 1, 1, 0, 1), AS_OF),
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
        ("2026-11-22/2026-11-28", "2026-11-22", "2026-11-28", 1),
        ("2026-11-29/2026-12-05", "2026-11-29", "2026-12-05", 20),
    ]


@pytest.mark.parametrize(
    ("as_of", "week", "first", "last"),
    [
        (utc(2027, 1, 3), "2026-12-27/2027-01-02", "2026-12-27", "2027-01-02"),  # 2026 has 53 ISO weeks
        (utc(2028, 1, 2), "2027-12-26/2028-01-01", "2027-12-26", "2028-01-01"),  # across the year end
        (utc(2026, 1, 4), "2025-12-28/2026-01-03", "2025-12-28", "2026-01-03"),  # ISO week 2026-W01's Saturday
        (utc(2028, 3, 5), "2028-02-27/2028-03-04", "2028-02-27", "2028-03-04"),  # contains the leap day
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
    if first == "2028-02-27":
        record_activity(conn, user, utc(2028, 2, 29, 12), xp=4)
    # When
    run_job(conn, JOB, as_of)
    # Then
    xp = 7 if first == "2028-02-27" else 3
    assert reports(conn) == [(user, week, payload(week, first, last, 0, 0, 0, xp, 1), as_of)]  # active Saturday


def test_the_guides_sql_call_logs_its_run(conn):
    record_activity(conn, make_user(conn), utc(2026, 11, 25))
    assert conn.execute("SELECT send_weekly_reports('2026-11-29T00:00:00Z') AS r").fetchone()["r"] == {
        "notifications_created": 1,
        "active_users": 1,
    }
    assert rows(conn, "SELECT job_name, status, trigger, as_of FROM cron_job_logs") == [
        ("send_weekly_reports", "succeeded", "sql", AS_OF)
    ]


def labels(conn: psycopg.Connection) -> list[tuple]:
    return [(user, key, p["xp_gained"]) for user, key, p, _ in reports(conn)]


def test_a_mid_week_hand_run_reports_last_week_again_and_never_takes_the_coming_sundays_report(conn):
    # Given activity last week and in the first days of this week
    user = make_user(conn)
    record_activity(conn, user, utc(2026, 11, 25, 12), xp=1)
    record_activity(conn, user, utc(2026, 11, 30, 12), xp=10)
    record_activity(conn, user, utc(2026, 12, 2, 9), xp=100)
    # When an operator tests the job by hand on Wednesday, before the Sunday run was ever made
    assert run_job(conn, JOB, utc(2026, 12, 2, 12)) == {"notifications_created": 1, "active_users": 1}
    # Then it reported the last complete week (a catch-up), nothing of this week
    assert labels(conn) == [(user, WEEK, 1)]
    # And the scheduled Sunday run of that week, and more hand runs, are no-ops
    assert run_job(conn, JOB, AS_OF) == {"notifications_created": 0, "active_users": 1}
    assert run_job(conn, JOB, utc(2026, 12, 5, 23, 59, 59)) == {"notifications_created": 0, "active_users": 1}
    # And the coming Sunday sends the full week just ended, every day of it
    record_activity(conn, user, utc(2026, 12, 5, 23), xp=1000)
    assert run_job(conn, JOB, utc(2026, 12, 6)) == {"notifications_created": 1, "active_users": 1}
    assert labels(conn) == [(user, WEEK, 1), (user, "2026-11-29/2026-12-05", 1110)]


def test_the_label_names_the_sunday_to_saturday_days_covered(conn):
    # The weekly leaderboard's week is the ISO week (Monday..Sunday); the report's week runs
    # Sunday..Saturday, ending where the report's Sunday begins, and its label says so.
    user = make_user(conn)
    record_activity(conn, user, utc(2026, 11, 22, 0), xp=2)  # Sunday of ISO week 2026-W47
    run_job(conn, JOB, AS_OF)
    ((_, key, p, _),) = reports(conn)
    assert key == p["week"] == f"{p['period_start']}/{p['period_end']}" == "2026-11-22/2026-11-28"
    assert date.fromisoformat(p["period_start"]).isoweekday() == 7
    assert date.fromisoformat(p["period_end"]).isoweekday() == 6


def test_a_report_sent_under_the_old_iso_week_label_counts_as_sent(conn):
    # Given the week's report sent before the label changed (ISO week of the Saturday)
    user, other = make_user(conn), make_user(conn)
    for someone in (user, other):
        record_activity(conn, someone, utc(2026, 11, 25), xp=3)
    conn.execute(
        """INSERT INTO notifications (user_id, kind, dedup_key, payload)
           VALUES (%s, 'weekly_report', '2026-W48', '{"period_start": "2026-11-22"}')""",
        (user,),
    )
    # When a hand run reports that week again
    assert run_job(conn, JOB, utc(2026, 12, 1)) == {"notifications_created": 1, "active_users": 2}
    # Then only the user without it gets one
    assert [(u, key) for u, key, _, _ in reports(conn)] == [(user, "2026-W48"), (other, WEEK)]


@pytest.mark.parametrize("order", ["report-first", "streaks-first", "late-retry-after-later-streak-runs"])
def test_the_streak_is_the_one_at_the_weeks_end_whatever_runs_first(conn, order):
    # Given update-user-streaks has processed up to Friday 11-27 (its ledger starts there)
    steady, lapsed, saturday_only, early = (make_user(conn) for _ in range(4))
    set_streak(conn, steady, 3)
    for day in (27, 28, 29, 30):
        record_activity(conn, steady, utc(2026, 11, day, 9))  # 3 -> 4 (Fri) -> 5 (Sat) -> ...
    for day in (26, 27, 29, 30):
        record_activity(conn, lapsed, utc(2026, 11, day, 9))  # 1 (Fri) -> 0 (Sat) -> 1 -> 2
    for day in (28, 30):
        record_activity(conn, saturday_only, utc(2026, 11, day, 9))  # 0 -> 1 (Sat) -> 0 -> 1
    record_activity(conn, early, utc(2026, 11, 24, 9))  # 0 all along
    run_job(conn, "update-user-streaks", utc(2026, 11, 28))

    # When the Sunday-midnight jobs run in the given order (a late retry keeps its as_of)
    if order == "report-first":
        run_job(conn, JOB, AS_OF)
        run_job(conn, "update-user-streaks", AS_OF)
    elif order == "streaks-first":
        run_job(conn, "update-user-streaks", AS_OF)
        run_job(conn, JOB, AS_OF)
    else:
        run_job(conn, "update-user-streaks", AS_OF)
        run_job(conn, "update-user-streaks", utc(2026, 11, 30))
        run_job(conn, "update-user-streaks", utc(2026, 12, 1))
        run_job(conn, JOB, AS_OF)

    # Then every report carries the streak as it stood at the end of Saturday 11-28
    streak = {user: p["current_streak"] for user, _, p, _ in reports(conn)}
    assert streak == {steady: 5, lapsed: 0, saturday_only: 1, early: 0}
