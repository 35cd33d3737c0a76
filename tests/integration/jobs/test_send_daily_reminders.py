"""send-daily-reminders: one streak_reminder per user per day for streaks at risk today."""

from __future__ import annotations

import psycopg
import pytest

from tests.factories import make_user, record_activity, rows, run_job, set_streak, utc

JOB = "send-daily-reminders"
AS_OF = utc(2026, 11, 28, 18)


def notifications(conn: psycopg.Connection) -> list[tuple]:
    return rows(conn, "SELECT user_id, kind, dedup_key, payload, created_at FROM notifications ORDER BY user_id, id")


def test_reminds_exactly_the_users_whose_streak_is_at_risk_today(conn):
    # Given
    u = {}
    u["at_risk"] = make_user(conn)
    set_streak(conn, u["at_risk"], 3)
    u["yesterday_only"] = make_user(conn)  # active 23:59 yesterday, not today
    set_streak(conn, u["yesterday_only"], 2)
    record_activity(conn, u["yesterday_only"], utc(2026, 11, 27, 23, 59))
    u["active_0001"] = make_user(conn)  # already active today: safe
    set_streak(conn, u["active_0001"], 5)
    record_activity(conn, u["active_0001"], utc(2026, 11, 28, 0, 1))
    u["active_at_as_of"] = make_user(conn)  # first active exactly at as_of: safe
    set_streak(conn, u["active_at_as_of"], 5)
    record_activity(conn, u["active_at_as_of"], AS_OF)
    u["after_as_of"] = make_user(conn)  # active only after as_of: the on-time run reminded
    set_streak(conn, u["after_as_of"], 4)
    record_activity(conn, u["after_as_of"], utc(2026, 11, 28, 18, 0, 1))
    u["no_streak"] = make_user(conn)
    set_streak(conn, u["no_streak"], 0, 9)
    u["no_row"] = make_user(conn)
    u["reminders_off"] = make_user(conn, reminders_enabled=False)
    set_streak(conn, u["reminders_off"], 3)
    for status in ("banned", "deleted", "inactive"):
        u[status] = make_user(conn, account_status=status)
        set_streak(conn, u[status], 3)

    # When
    summary = run_job(conn, JOB, AS_OF)

    # Then
    assert summary == {"notifications_created": 3}
    assert notifications(conn) == [
        (u["at_risk"], "streak_reminder", "2026-11-28", {"streak": 3}, AS_OF),
        (u["yesterday_only"], "streak_reminder", "2026-11-28", {"streak": 2}, AS_OF),
        (u["after_as_of"], "streak_reminder", "2026-11-28", {"streak": 4}, AS_OF),
    ]


def test_at_most_one_per_user_per_day_however_often_it_runs(conn):
    # Given a user at risk and another kind of notification already keyed by today
    user = make_user(conn)
    set_streak(conn, user, 3)
    conn.execute(
        "INSERT INTO notifications (user_id, kind, dedup_key, created_at) VALUES (%s, 'other', '2026-11-28', %s)",
        (user, utc(2026, 11, 28, 9)),
    )
    assert run_job(conn, JOB, AS_OF) == {"notifications_created": 1}
    before = rows(conn, "SELECT x::text FROM notifications x ORDER BY 1")
    # When it runs again, and once more later the same day
    assert run_job(conn, JOB, AS_OF) == {"notifications_created": 0}
    assert run_job(conn, JOB, utc(2026, 11, 28, 23, 59, 59)) == {"notifications_created": 0}
    # Then the table is unchanged
    assert rows(conn, "SELECT x::text FROM notifications x ORDER BY 1") == before
    # And the next day is a new key
    assert run_job(conn, JOB, utc(2026, 11, 29, 18)) == {"notifications_created": 1}
    assert rows(conn, "SELECT dedup_key FROM notifications WHERE kind = 'streak_reminder' ORDER BY id") == [
        ("2026-11-28",),
        ("2026-11-29",),
    ]


@pytest.mark.parametrize(
    ("as_of", "key"),
    [
        (utc(2026, 12, 31, 18), "2026-12-31"),
        (utc(2027, 1, 1, 18), "2027-01-01"),
        (utc(2028, 2, 29, 18), "2028-02-29"),
        (utc(2026, 11, 30, 23, 59, 59), "2026-11-30"),
    ],
)
def test_the_day_key_is_as_ofs_utc_date(conn, as_of, key):
    user = make_user(conn)
    set_streak(conn, user, 1)
    run_job(conn, JOB, as_of)
    assert rows(conn, "SELECT dedup_key, created_at FROM notifications") == [(key, as_of)]


def test_the_guides_sql_call_logs_its_run(conn):
    user = make_user(conn)
    set_streak(conn, user, 1)
    assert conn.execute("SELECT send_daily_reminders('2026-11-28T18:00:00Z') AS r").fetchone()["r"] == {
        "notifications_created": 1
    }
    assert rows(conn, "SELECT job_name, status, trigger, as_of FROM cron_job_logs") == [
        ("send_daily_reminders", "succeeded", "sql", AS_OF)
    ]


def test_a_backfill_of_a_day_whose_streaks_were_already_processed_reminds_nobody(conn):
    # Given a streak at risk on 11-28, and update-user-streaks already past that day (11-29 00:00
    # processed 11-28 and broke the streak): the day is over, a reminder for it would be noise
    user, newcomer = make_user(conn), make_user(conn)
    set_streak(conn, user, 3)
    record_activity(conn, newcomer, utc(2026, 11, 29, 9))
    run_job(conn, "update-user-streaks", utc(2026, 11, 29))
    set_streak(conn, newcomer, 1)
    # When the missed 18:00 run of 11-28 is backfilled
    assert run_job(conn, JOB, AS_OF) == {"notifications_created": 0}
    # Then nobody is reminded for that day; the next day's run reminds as usual
    assert notifications(conn) == []
    assert run_job(conn, JOB, utc(2026, 11, 29, 18)) == {"notifications_created": 0}  # newcomer active today
    assert run_job(conn, JOB, utc(2026, 11, 30, 18)) == {"notifications_created": 1}
