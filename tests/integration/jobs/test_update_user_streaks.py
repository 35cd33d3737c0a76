"""update-user-streaks: one set-based pass per unprocessed day through yesterday, watermarked
by the streak_days ledger; the guide's rollback restores a bad one-day run."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest

from shared import registry
from shared.db import reset_connection
from shared.events import RunRequest, Trigger
from shared.observability import metrics
from shared.runner import run
from tests.factories import make_user, record_activity, rows, run_job, set_streak, utc

JOB = "update-user-streaks"
AS_OF = utc(2026, 11, 28)
OLD = utc(2026, 1, 1)  # when the fixtures' rows were last changed, well before any run
CHANGED = "changed"  # updated_at of a row a run wrote: the real time of the change


def age_rows(conn: psycopg.Connection) -> None:
    """Fixture rows were written long before the run (not at the test's wall-clock time)."""
    conn.execute("UPDATE user_gamification SET updated_at = %s", (OLD,))


def streaks(conn: psycopg.Connection) -> list[tuple]:
    """Each row, its updated_at shown as OLD (never written by a run) or CHANGED (written by one
    at the real time of the change; test_updated_at_* check those times exactly)."""
    found = rows(
        conn,
        """SELECT user_id, current_streak, longest_streak, previous_streak_value,
                                previous_longest_streak, streak_day, updated_at
                           FROM user_gamification ORDER BY user_id""",
    )
    return [(*r[:-1], OLD if r[-1] == OLD else CHANGED) for r in found]


def ledger(conn: psycopg.Connection) -> list[tuple]:
    return rows(
        conn,
        """SELECT day, processed_as_of, streaks_incremented, streaks_broken, users_with_streak
                           FROM streak_days ORDER BY day""",
    )


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {t: rows(conn, f"SELECT x::text FROM {t} x ORDER BY 1") for t in ("user_gamification", "streak_days")}


def active(conn: psycopg.Connection, user_id: int, *moments: datetime) -> None:
    for moment in moments:
        record_activity(conn, user_id, moment)


@pytest.fixture
def one_day(conn):
    """Users covering every rule for the run at 2026-11-28 00:00 (yesterday = 2026-11-27)."""
    names = ("late", "grows", "new", "idle", "break", "only_today", "old_only")
    u = {name: make_user(conn) for name in names}
    u["banned"] = make_user(conn, account_status="banned")
    u["deleted"] = make_user(conn, account_status="deleted")
    # (marked inactive after its activity below, so that activity does not bring it back)
    u["inactive"] = make_user(conn, account_status="inactive", status_changed_at=utc(2026, 11, 28, 1))
    set_streak(conn, u["late"], 3, 5)  # active 23:59 yesterday and 00:05 today: keeps credit
    set_streak(conn, u["grows"], 4, 4)  # longest follows
    set_streak(conn, u["idle"], 0, 2)  # no streak, not active: not written
    set_streak(conn, u["break"], 2, 6)  # not active yesterday: breaks
    set_streak(conn, u["only_today"], 2, 2)  # active only at 00:01 today: breaks
    set_streak(conn, u["old_only"], 1, 1)  # active the day before yesterday only: breaks
    set_streak(conn, u["banned"], 7, 7)  # left alone, active or not
    set_streak(conn, u["deleted"], 3, 3)
    set_streak(conn, u["inactive"], 2, 2)  # not banned/deleted: counted
    active(conn, u["late"], utc(2026, 11, 27, 23, 59), utc(2026, 11, 28, 0, 5))
    active(conn, u["grows"], utc(2026, 11, 27, 0, 0))
    active(conn, u["new"], utc(2026, 11, 27, 12))
    conn.execute("DELETE FROM user_gamification WHERE user_id = %s", (u["new"],))  # no row yet
    active(conn, u["only_today"], utc(2026, 11, 28, 0, 1))
    active(conn, u["old_only"], utc(2026, 11, 26, 23, 59, 59))
    active(conn, u["banned"], utc(2026, 11, 27, 10))
    active(conn, u["inactive"], utc(2026, 11, 27, 10))
    age_rows(conn)
    return u


def test_one_day_grows_breaks_and_leaves_alone_exactly(conn, one_day):
    u = one_day
    d = date(2026, 11, 27)
    # When
    summary = run_job(conn, JOB, AS_OF)
    # Then
    assert summary == {"days_processed": 1, "streaks_incremented": 4, "streaks_broken": 3}
    assert streaks(conn) == sorted(
        [
            (u["late"], 4, 5, 3, 5, d, CHANGED),
            (u["grows"], 5, 5, 4, 4, d, CHANGED),
            (u["new"], 1, 1, 0, 0, d, CHANGED),
            (u["idle"], 0, 2, 0, 0, None, OLD),
            (u["break"], 0, 6, 2, 6, d, CHANGED),
            (u["only_today"], 0, 2, 2, 2, d, CHANGED),
            (u["old_only"], 0, 1, 1, 1, d, CHANGED),
            (u["banned"], 7, 7, 0, 0, None, OLD),
            (u["deleted"], 3, 3, 0, 0, None, OLD),
            (u["inactive"], 3, 3, 2, 2, d, CHANGED),
        ]
    )
    # users with a streak after the day: late, grows, new, inactive (banned/deleted excluded)
    assert ledger(conn) == [(d, AS_OF, 4, 3, 4)]


def test_second_run_and_later_retry_and_old_backfill_change_nothing(conn, one_day):
    run_job(conn, JOB, AS_OF)
    before = snapshot(conn)
    zeros = {"days_processed": 0, "streaks_incremented": 0, "streaks_broken": 0}
    assert run_job(conn, JOB, AS_OF) == zeros
    assert run_job(conn, JOB, utc(2026, 11, 28, 23, 59, 59)) == zeros  # same day, late retry
    assert run_job(conn, JOB, utc(2026, 11, 20)) == zeros  # an old backfill
    assert snapshot(conn) == before


def test_empty_ledger_processes_only_yesterday(conn):
    # Given activity on several past days and no ledger
    user = make_user(conn)
    active(conn, user, utc(2026, 11, 25, 12), utc(2026, 11, 26, 12), utc(2026, 11, 27, 12))
    age_rows(conn)
    # When
    assert run_job(conn, JOB, AS_OF) == {"days_processed": 1, "streaks_incremented": 1, "streaks_broken": 0}
    # Then only yesterday counted
    assert streaks(conn) == [(user, 1, 1, 0, 0, date(2026, 11, 27), CHANGED)]
    assert [r[0] for r in ledger(conn)] == [date(2026, 11, 27)]


def test_catch_up_after_a_three_day_outage_processes_each_day_in_order(conn):
    # Given the run of 2026-11-25 (processed 11-24), then three missed runs (26, 27, 28)
    p, q, r = make_user(conn), make_user(conn), make_user(conn)
    active(conn, p, *(utc(2026, 11, day, 9) for day in (24, 25, 26, 27)))
    active(conn, q, *(utc(2026, 11, day, 9) for day in (24, 25, 27)))
    active(conn, r, *(utc(2026, 11, day, 9) for day in (24, 26)))
    age_rows(conn)
    first = utc(2026, 11, 25)
    assert run_job(conn, JOB, first) == {"days_processed": 1, "streaks_incremented": 3, "streaks_broken": 0}

    # When the job runs again on 2026-11-28
    summary = run_job(conn, JOB, AS_OF)

    # Then 11-25, 11-26, 11-27 are processed in order:
    #   p: 1 -> 2 -> 3 -> 4;  q: 1 -> 2 -> 0 -> 1;  r: 1 -> 0 -> 1 -> 0
    assert summary == {"days_processed": 3, "streaks_incremented": 6, "streaks_broken": 3}
    d27 = date(2026, 11, 27)
    assert streaks(conn) == [
        (p, 4, 4, 3, 3, d27, CHANGED),
        (q, 1, 2, 0, 2, d27, CHANGED),
        (r, 0, 1, 1, 1, d27, CHANGED),
    ]
    assert ledger(conn) == [
        (date(2026, 11, 24), first, 3, 0, 3),
        (date(2026, 11, 25), AS_OF, 2, 1, 2),
        (date(2026, 11, 26), AS_OF, 2, 1, 2),
        (date(2026, 11, 27), AS_OF, 2, 1, 2),
    ]


def test_catch_up_across_the_year_end(conn):
    user = make_user(conn)
    active(conn, user, utc(2026, 12, 30, 23, 59, 59), utc(2026, 12, 31, 0, 0), utc(2027, 1, 1, 23, 59, 59))
    age_rows(conn)
    run_job(conn, JOB, utc(2026, 12, 31))  # processes 12-30
    assert run_job(conn, JOB, utc(2027, 1, 2)) == {"days_processed": 2, "streaks_incremented": 2, "streaks_broken": 0}
    assert streaks(conn) == [(user, 3, 3, 2, 2, date(2027, 1, 1), CHANGED)]
    assert [r[0] for r in ledger(conn)] == [date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 1)]


@pytest.mark.parametrize(
    ("as_of", "yesterday"),
    [
        (utc(2026, 12, 1), date(2026, 11, 30)),  # month end
        (utc(2027, 1, 1), date(2026, 12, 31)),  # year end
        (utc(2028, 2, 29), date(2028, 2, 28)),  # the day before a leap day
        (utc(2028, 3, 1), date(2028, 2, 29)),  # leap day
        (utc(2026, 11, 28, 6, 30), date(2026, 11, 27)),  # a late retry computes the same day
    ],
)
def test_yesterday_is_the_utc_day_before_as_of(conn, as_of, yesterday):
    # Given one user active at yesterday's last second and one first active at today's first
    midnight = datetime.combine(yesterday + timedelta(days=1), time(0), tzinfo=UTC)
    on_time, too_late = make_user(conn), make_user(conn)
    set_streak(conn, on_time, 2)
    set_streak(conn, too_late, 2)
    active(conn, on_time, midnight - timedelta(seconds=1))
    active(conn, too_late, midnight)
    age_rows(conn)
    # When
    run_job(conn, JOB, as_of)
    # Then
    assert streaks(conn) == [(on_time, 3, 3, 2, 2, yesterday, CHANGED), (too_late, 0, 2, 2, 2, yesterday, CHANGED)]
    assert [r[0] for r in ledger(conn)] == [yesterday]


def test_streaks_done_for_reads_the_ledger(conn):
    def done(at: datetime) -> bool:
        return conn.execute("SELECT streaks_done_for(%s) AS d", (at,)).fetchone()["d"]

    assert done(AS_OF) is False  # empty ledger
    run_job(conn, JOB, AS_OF)  # processes 11-27
    assert done(AS_OF) is True
    assert done(utc(2026, 11, 28, 23, 59, 59)) is True
    assert done(utc(2026, 11, 20)) is True  # an older day: the ledger is past it
    assert done(utc(2026, 11, 29)) is False


def test_the_guides_rollback_restores_the_streaks_of_a_one_day_run(conn, one_day):
    u = one_day
    before = rows(conn, "SELECT user_id, current_streak, longest_streak FROM user_gamification ORDER BY user_id")
    # Given a bad run, then a new user whose row the app creates after it
    run_job(conn, JOB, AS_OF)
    newcomer = make_user(conn)
    record_activity(conn, newcomer, utc(2026, 11, 28, 8))
    conn.execute("UPDATE user_gamification SET updated_at = %s WHERE user_id = %s", (utc(2026, 11, 28, 8), newcomer))

    # When the operator runs the guide's statement, exactly as written, with the run's as_of
    conn.execute("""UPDATE user_gamification
SET current_streak = previous_streak_value
WHERE updated_at >= '2026-11-28 00:00:00+00'""")

    # Then every current streak is back (the new user's row created after the run stays 0)
    restored = rows(conn, "SELECT user_id, current_streak FROM user_gamification ORDER BY user_id")
    expected = sorted([(uid, cur) for uid, cur, _ in before if uid != u["new"]] + [(u["new"], 0), (newcomer, 0)])
    assert restored == expected

    # And docs/jobs/update-user-streaks.md's two further statements restore the longest streaks and the ledger,
    # so the next run redoes the day and reproduces the first run's result exactly
    with conn.transaction():
        conn.execute(
            "UPDATE user_gamification SET longest_streak = previous_longest_streak "
            "WHERE updated_at >= '2026-11-28 00:00:00+00'"
        )
        conn.execute("DELETE FROM streak_days WHERE processed_as_of = '2026-11-28 00:00:00+00'")
    assert rows(
        conn,
        "SELECT user_id, current_streak, longest_streak FROM user_gamification "
        "WHERE user_id <> ALL(%s) ORDER BY user_id",
        ([u["new"], newcomer],),
    ) == [r for r in before if r[0] != u["new"]]
    assert ledger(conn) == []
    assert run_job(conn, JOB, AS_OF) == {"days_processed": 1, "streaks_incremented": 4, "streaks_broken": 3}
    assert ledger(conn) == [(date(2026, 11, 27), AS_OF, 4, 3, 4)]


def test_previous_streak_value_is_never_null(conn):
    # A row created by the app (not by the job) restores to 0, never to NULL
    user = make_user(conn)
    record_activity(conn, user, utc(2026, 11, 28, 8))
    assert rows(conn, "SELECT previous_streak_value, previous_longest_streak FROM user_gamification") == [(0, 0)]
    with pytest.raises(psycopg.errors.NotNullViolation):
        conn.execute("UPDATE user_gamification SET previous_streak_value = NULL")


@pytest.fixture
def runner_db(db_url, conn, monkeypatch):
    """The runner's connection pointed at the test database."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    reset_connection()
    yield conn
    reset_connection()
    metrics.clear_metrics()


def run_as(conn: psycopg.Connection, how: str, as_of: datetime) -> datetime:
    """Run the job for as_of the way an operator would; return the run's logged started_at."""
    job = registry.get(JOB)
    if how == "schedule":
        log_id = run(RunRequest(job=job, as_of=as_of, trigger=Trigger.SCHEDULE)).log_id
    elif how == "manual":
        log_id = run(RunRequest(job=job, as_of=as_of, trigger=Trigger.MANUAL)).log_id
    else:  # the guide's Testing Jobs Manually, typed in psql inside one transaction
        with conn.transaction():
            conn.execute("SELECT update_user_streaks(%s)", (as_of,))
        log_id = conn.execute("SELECT max(id) AS id FROM cron_job_logs").fetchone()["id"]
    row = conn.execute("SELECT status, started_at FROM cron_job_logs WHERE id = %s", (log_id,)).fetchone()
    assert row["status"] == "succeeded"
    return row["started_at"]


def current(conn: psycopg.Connection) -> dict[int, int]:
    return dict(rows(conn, "SELECT user_id, current_streak FROM user_gamification ORDER BY user_id"))


@pytest.mark.parametrize("how", ["schedule", "manual", "sql"])
def test_the_guides_rollback_by_the_runs_logged_start_selects_exactly_that_runs_rows(runner_db, how):
    conn = runner_db
    # Given two runs: 11-28 (processes 11-27) then 11-29 (processes 11-28)
    grows, breaks_later, starts_later, broke_first = (make_user(conn) for _ in range(4))
    set_streak(conn, grows, 3)
    set_streak(conn, breaks_later, 2)
    set_streak(conn, broke_first, 1)  # broken by the first run, untouched by the second
    active(conn, grows, utc(2026, 11, 27, 9), utc(2026, 11, 28, 9))
    active(conn, breaks_later, utc(2026, 11, 27, 9))
    active(conn, starts_later, utc(2026, 11, 28, 9))
    age_rows(conn)
    run_as(conn, how, AS_OF)
    after_first = current(conn)
    assert after_first == {grows: 4, breaks_later: 3, starts_later: 0, broke_first: 0}
    started_at = run_as(conn, how, utc(2026, 11, 29))
    assert current(conn) == {grows: 5, breaks_later: 0, starts_later: 1, broke_first: 0}

    # When the operator pastes the guide's rollback with the second run's logged started_at
    changed = conn.execute(
        "UPDATE user_gamification SET current_streak = previous_streak_value WHERE updated_at >= %s",
        (started_at,),
    ).rowcount

    # Then exactly the rows the second run changed are restored, nothing of the first run's
    assert changed == 3
    assert current(conn) == after_first


def test_a_rollback_by_as_of_selects_the_days_that_run_processed(conn, one_day):
    before = rows(conn, "SELECT user_id, current_streak FROM user_gamification ORDER BY user_id")
    run_job(conn, JOB, AS_OF)
    # A rollback by as_of: the rows whose streak_day is a day that run processed
    conn.execute(
        """UPDATE user_gamification SET current_streak = previous_streak_value
            WHERE streak_day IN (SELECT day FROM streak_days WHERE processed_as_of = %s)""",
        (AS_OF,),
    )
    new = one_day["new"]  # created by the run: restores to 0
    assert rows(conn, "SELECT user_id, current_streak FROM user_gamification ORDER BY user_id") == sorted(
        [r for r in before if r[0] != new] + [(new, 0)]
    )
