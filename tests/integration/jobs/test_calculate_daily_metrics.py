"""calculate-daily-metrics: one upserted row for yesterday, refused while yesterday's streaks are missing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest

from tests.factories import challenge_progress, make_user, record_activity, rows, run_job, send_message, utc

JOB = "calculate-daily-metrics"
AS_OF = utc(2026, 11, 28, 1)
D = date(2026, 11, 27)


def metrics(conn: psycopg.Connection) -> list[tuple]:
    return rows(
        conn,
        """SELECT metric_date, daily_active_users, new_signups, messages_sent, stories_posted,
                                challenges_completed, users_with_streak, reports_filed, users_banned,
                                calculated_as_of
                           FROM daily_metrics ORDER BY metric_date""",
    )


def ledger_row(conn: psycopg.Connection, day: date, users_with_streak: int) -> None:
    """update-user-streaks' watermark for ``day`` (its users_with_streak is what metrics reads)."""
    conn.execute(
        """INSERT INTO streak_days (day, processed_as_of, streaks_incremented, streaks_broken,
                                             users_with_streak) VALUES (%s, %s, 0, 0, %s)""",
        (day, datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC), users_with_streak),
    )


def completed(conn: psycopg.Connection, user_id: int, at: datetime | None) -> None:
    challenge_progress(conn, user_id, at, D)


def test_refuses_with_jb001_naming_the_missing_dependency_and_day(conn):
    # Given update-user-streaks processed 2026-11-26 but not yet 2026-11-27
    ledger_row(conn, date(2026, 11, 26), 5)
    # When
    with pytest.raises(psycopg.Error) as failure:
        run_job(conn, JOB, AS_OF)
    # Then a clear, actionable refusal and nothing written
    assert failure.value.sqlstate == "JB001"
    assert failure.value.diag.message_primary == (
        "calculate-daily-metrics needs update-user-streaks for 2026-11-27, which has not run yet; "
        "run update-user-streaks for as_of 2026-11-28T00:00:00Z first"
    )
    assert metrics(conn) == []


def test_refuses_on_an_empty_ledger_and_runs_once_the_streaks_are_done(conn):
    with pytest.raises(psycopg.Error) as failure:
        run_job(conn, JOB, AS_OF)
    assert failure.value.sqlstate == "JB001"
    run_job(conn, "update-user-streaks", utc(2026, 11, 28))
    assert run_job(conn, JOB, AS_OF)["metrics_rows_written"] == 1


def test_refuses_a_day_before_the_ledger_began(conn):
    # Given the ledger starts at 2026-11-27: the streak count of 2026-11-26 was never recorded
    ledger_row(conn, D, 5)
    with pytest.raises(psycopg.Error) as failure:
        run_job(conn, JOB, utc(2026, 11, 27, 1))
    assert failure.value.sqlstate == "JB002"
    assert "2026-11-26" in failure.value.diag.message_primary
    assert metrics(conn) == []


def test_the_sql_wrapper_records_the_refusal(conn):
    result = conn.execute("SELECT calculate_daily_metrics('2026-11-28T01:00:00Z') AS r").fetchone()["r"]
    assert result["sqlstate"] == "JB001"
    assert rows(conn, "SELECT job_name, status, trigger, metadata->>'sqlstate' FROM cron_job_logs") == [
        ("calculate_daily_metrics", "failed", "sql", "JB001")
    ]


def test_counts_each_metric_for_exactly_yesterday(conn):
    # Given rows just inside and just outside 2026-11-27 UTC for every metric
    first, last = utc(2026, 11, 27), utc(2026, 11, 27, 23, 59, 59, 999999)
    before, after = first - timedelta(microseconds=1), utc(2026, 11, 28)
    a, b = make_user(conn, created_at=first), make_user(conn, created_at=last)  # sign-ups on D
    c, e = make_user(conn, created_at=before), make_user(conn, created_at=after)  # not on D
    record_activity(conn, a, utc(2026, 11, 27, 10), stories=2)
    record_activity(conn, b, last, stories=1)
    record_activity(conn, c, after)  # today: not D
    record_activity(conn, e, before, stories=5)  # the day before
    send_message(conn, a, b, first)
    send_message(conn, b, a, last)
    send_message(conn, a, b, utc(2026, 11, 27, 12), deleted=True)
    send_message(conn, a, b, before)
    send_message(conn, a, b, after)
    completed(conn, a, utc(2026, 11, 27, 9))
    completed(conn, b, last)
    completed(conn, c, after)
    completed(conn, e, None)  # in progress
    conn.execute(
        """INSERT INTO user_reports (reporter_id, reported_user_id, status, created_at)
                    VALUES (%(a)s, %(c)s, 'pending', %(first)s), (%(b)s, %(c)s, 'dismissed', %(last)s),
                           (%(a)s, %(e)s, 'pending', %(after)s)""",
        {"a": a, "b": b, "c": c, "e": e, "first": first, "last": last, "after": after},
    )
    conn.execute(
        """INSERT INTO moderation_actions (user_id, action, actor, reason, created_at)
                    VALUES (%(c)s, 'ban', 'staff', 'r', %(first)s), (%(e)s, 'ban', 'staff', 'r', %(last)s),
                           (%(a)s, 'warn', 'staff', 'r', %(first)s),
                           (%(b)s, 'ban', 'staff', 'r', %(after)s)""",
        {"a": a, "b": b, "c": c, "e": e, "first": first, "last": last, "after": after},
    )
    ledger_row(conn, D, 42)

    # When
    summary = run_job(conn, JOB, AS_OF)

    # Then
    assert summary == {"metrics_rows_written": 1, "daily_active_users": 2, "new_signups": 2, "messages_sent": 2}
    assert metrics(conn) == [(D, 2, 2, 2, 3, 2, 42, 2, 2, AS_OF)]


def test_identical_rerun_writes_nothing_and_changed_data_rewrites_the_row(conn):
    # Given a first run
    user = make_user(conn, created_at=utc(2026, 11, 27, 5))
    ledger_row(conn, D, 1)
    run_job(conn, JOB, AS_OF)
    first = metrics(conn)
    # When re-run for the same occurrence and later the same day with identical data
    same = run_job(conn, JOB, AS_OF)
    later = run_job(conn, JOB, utc(2026, 11, 28, 9))
    # Then nothing is written (calculated_as_of keeps the first run's as_of)
    assert same == later == {"metrics_rows_written": 0, "daily_active_users": 0, "new_signups": 1, "messages_sent": 0}
    assert metrics(conn) == first == [(D, 0, 1, 0, 0, 0, 1, 0, 0, AS_OF)]
    # When a late message for D arrives and the job re-runs
    send_message(conn, user, user, utc(2026, 11, 27, 6))
    assert run_job(conn, JOB, utc(2026, 11, 28, 9))["metrics_rows_written"] == 1
    assert metrics(conn) == [(D, 0, 1, 1, 0, 0, 1, 0, 0, utc(2026, 11, 28, 9))]


@pytest.mark.parametrize(
    ("as_of", "day"),
    [
        (utc(2026, 12, 1, 1), date(2026, 11, 30)),  # month end
        (utc(2027, 1, 1, 1), date(2026, 12, 31)),  # year end
        (utc(2028, 3, 1, 1), date(2028, 2, 29)),  # leap day
        (utc(2028, 2, 29, 1), date(2028, 2, 28)),  # the day before it
    ],
)
def test_yesterday_boundaries(conn, as_of, day):
    start = datetime.combine(day, time(0), tzinfo=UTC)
    end = start + timedelta(days=1)
    user = make_user(conn, created_at=start)
    make_user(conn, created_at=end)
    make_user(conn, created_at=start - timedelta(seconds=1))
    send_message(conn, user, user, end - timedelta(seconds=1))
    send_message(conn, user, user, end)
    record_activity(conn, user, end - timedelta(seconds=1))
    record_activity(conn, make_user(conn), end)
    ledger_row(conn, day, 7)
    assert run_job(conn, JOB, as_of) == {
        "metrics_rows_written": 1,
        "daily_active_users": 1,
        "new_signups": 1,
        "messages_sent": 1,
    }
    assert metrics(conn) == [(day, 1, 1, 1, 0, 0, 7, 0, 0, as_of)]
