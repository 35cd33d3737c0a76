"""reset-daily-challenges: archive past active challenges, expire their open progress,
activate today's, create one from the least recently used template when today has none."""

from __future__ import annotations

import threading
import time
from datetime import date

import psycopg
import pytest

from shared import execution, registry
from shared.db import connect, transaction
from tests.factories import make_user, rows, run_job, utc

JOB = "reset-daily-challenges"
AS_OF = utc(2026, 11, 28)
ZEROS = {"challenges_archived": 0, "progress_expired": 0, "challenges_activated": 0, "challenges_created": 0}
EARLIER = utc(2026, 11, 1)


def challenge(
    conn: psycopg.Connection, day: date, status: str, title: str | None = None, template_id: int | None = None
) -> int:
    return conn.execute(
        """INSERT INTO daily_challenges (template_id, title, challenge_date, status, created_at, activated_at)
           VALUES (%s, %s, %s, %s, %s, CASE WHEN %s <> 'scheduled' THEN %s::timestamptz END) RETURNING id""",
        (template_id, title or f"challenge {day}", day, status, EARLIER, status, EARLIER),
    ).fetchone()["id"]


def template(conn: psycopg.Connection, title: str, last_used_on: date | None = None, enabled: bool = True) -> int:
    return conn.execute(
        "INSERT INTO challenge_templates (title, last_used_on, is_enabled) VALUES (%s, %s, %s) RETURNING id",
        (title, last_used_on, enabled),
    ).fetchone()["id"]


def progress(conn: psycopg.Connection, user_id: int, challenge_id: int, status: str = "in_progress") -> None:
    conn.execute(
        """INSERT INTO user_challenge_progress (user_id, challenge_id, status, started_at, completed_at)
           VALUES (%s, %s, %s, %s, CASE WHEN %s = 'completed' THEN %s::timestamptz END)""",
        (user_id, challenge_id, status, EARLIER, status, EARLIER),
    )


def challenges(conn: psycopg.Connection) -> list[tuple]:
    return rows(
        conn,
        """SELECT id, template_id, title, challenge_date, status, auto_created,
                                created_at, activated_at, archived_at
                           FROM daily_challenges ORDER BY id""",
    )


def progress_rows(conn: psycopg.Connection) -> list[tuple]:
    return rows(
        conn,
        """SELECT user_id, challenge_id, status, closed_at
                           FROM user_challenge_progress ORDER BY user_id, challenge_id""",
    )


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {
        t: rows(conn, f"SELECT x::text FROM {t} x ORDER BY 1")
        for t in ("daily_challenges", "user_challenge_progress", "challenge_templates")
    }


def test_archives_past_active_expires_their_open_progress_and_activates_today(conn):
    # Given: active challenges yesterday and a week ago, today's scheduled, tomorrow's scheduled,
    # an already archived one, and a template pool (unused: today has a challenge)
    t1 = template(conn, "pool")
    yesterday = challenge(conn, date(2026, 11, 27), "active")
    stale = challenge(conn, date(2026, 11, 20), "active")
    today = challenge(conn, date(2026, 11, 28), "scheduled")
    tomorrow = challenge(conn, date(2026, 11, 29), "scheduled")
    old = conn.execute(
        """INSERT INTO daily_challenges (title, challenge_date, status, created_at, activated_at, archived_at)
           VALUES ('old', '2026-11-26', 'archived', %s, %s, %s) RETURNING id""",
        (EARLIER, EARLIER, EARLIER),
    ).fetchone()["id"]
    u1, u2 = make_user(conn), make_user(conn)
    progress(conn, u1, yesterday)  # open on an archived challenge -> expired
    progress(conn, u2, yesterday, "completed")  # finished -> untouched
    progress(conn, u1, stale)  # open -> expired
    progress(conn, u1, today)  # today's -> untouched
    progress(conn, u2, tomorrow)  # tomorrow's -> untouched

    # When
    summary = run_job(conn, JOB, AS_OF)

    # Then
    assert summary == {
        "challenges_archived": 2,
        "progress_expired": 2,
        "challenges_activated": 1,
        "challenges_created": 0,
    }
    e = EARLIER
    assert challenges(conn) == [
        (yesterday, None, "challenge 2026-11-27", date(2026, 11, 27), "archived", False, e, e, AS_OF),
        (stale, None, "challenge 2026-11-20", date(2026, 11, 20), "archived", False, e, e, AS_OF),
        (today, None, "challenge 2026-11-28", date(2026, 11, 28), "active", False, e, AS_OF, None),
        (tomorrow, None, "challenge 2026-11-29", date(2026, 11, 29), "scheduled", False, e, None, None),
        (old, None, "old", date(2026, 11, 26), "archived", False, e, e, e),
    ]
    assert progress_rows(conn) == sorted(
        [
            (u1, yesterday, "expired", AS_OF),
            (u2, yesterday, "completed", None),
            (u1, stale, "expired", AS_OF),
            (u1, today, "in_progress", None),
            (u2, tomorrow, "in_progress", None),
        ]
    )
    assert rows(conn, "SELECT id, last_used_on FROM challenge_templates") == [(t1, None)]


def test_second_run_with_the_same_as_of_changes_nothing(conn):
    # Given a first run that archived, expired, activated and created
    template(conn, "pool")
    c = challenge(conn, date(2026, 11, 27), "active")
    progress(conn, make_user(conn), c)
    run_job(conn, JOB, AS_OF)
    before = snapshot(conn)
    # When it runs again for the same occurrence (and once more later that day: a late retry)
    again = run_job(conn, JOB, AS_OF)
    later = run_job(conn, JOB, utc(2026, 11, 28, 23, 59, 59))
    # Then zeros and identical tables
    assert again == ZEROS
    assert later == ZEROS
    assert snapshot(conn) == before


def test_creates_todays_challenge_from_the_least_recently_used_enabled_template(conn):
    # Given a pool: used a week ago, never used (lower id), disabled and never used, never used (higher id)
    week_ago = template(conn, "week ago", date(2026, 11, 21))
    never_a = template(conn, "never A")
    template(conn, "disabled", None, enabled=False)
    never_b = template(conn, "never B")

    # When the job runs on four consecutive days with no challenge scheduled
    for day in (28, 29, 30):
        assert run_job(conn, JOB, utc(2026, 11, day)) == {
            **ZEROS,
            "challenges_created": 1,
            "challenges_archived": 1 if day > 28 else 0,
        }
    assert run_job(conn, JOB, utc(2026, 12, 1)) == {**ZEROS, "challenges_created": 1, "challenges_archived": 1}
    created = rows(
        conn,
        """SELECT template_id, title, challenge_date, status, auto_created, created_at,
                                     activated_at
                                FROM daily_challenges ORDER BY challenge_date""",
    )

    # Then NULLs first by id, then the oldest last_used_on; each day one active auto-created challenge
    assert created == [
        (never_a, "never A", date(2026, 11, 28), "archived", True, utc(2026, 11, 28), utc(2026, 11, 28)),
        (never_b, "never B", date(2026, 11, 29), "archived", True, utc(2026, 11, 29), utc(2026, 11, 29)),
        (week_ago, "week ago", date(2026, 11, 30), "archived", True, utc(2026, 11, 30), utc(2026, 11, 30)),
        (never_a, "never A", date(2026, 12, 1), "active", True, utc(2026, 12, 1), utc(2026, 12, 1)),
    ]
    assert rows(conn, "SELECT title, last_used_on FROM challenge_templates ORDER BY id") == [
        ("week ago", date(2026, 11, 30)),
        ("never A", date(2026, 12, 1)),
        ("disabled", None),
        ("never B", date(2026, 11, 29)),
    ]


@pytest.mark.parametrize("status", ["scheduled", "active", "archived"])
def test_no_challenge_is_created_when_today_already_has_one(conn, status):
    # Given today's challenge in any status and an enabled template
    template(conn, "pool")
    challenge(conn, date(2026, 11, 28), status)
    # When
    summary = run_job(conn, JOB, AS_OF)
    # Then nothing is created and the template stays unused
    assert summary["challenges_created"] == 0
    assert rows(conn, "SELECT count(*) FROM daily_challenges") == [(1,)]
    assert rows(conn, "SELECT last_used_on FROM challenge_templates") == [(None,)]


def test_an_empty_or_disabled_pool_creates_nothing(conn):
    template(conn, "off", enabled=False)
    assert run_job(conn, JOB, AS_OF) == ZEROS
    assert challenges(conn) == []


@pytest.mark.parametrize(
    ("as_of", "yesterday", "today", "tomorrow"),
    [
        (utc(2026, 12, 1), date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)),  # month end
        (utc(2027, 1, 1), date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 2)),  # year end
        (utc(2028, 2, 29), date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)),  # leap day
        (utc(2028, 3, 1), date(2028, 2, 29), date(2028, 3, 1), date(2028, 3, 2)),  # after leap day
        (utc(2026, 11, 28, 23, 59, 59), date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29)),  # late retry
    ],
)
def test_today_is_the_utc_date_of_as_of(conn, as_of, yesterday, today, tomorrow):
    # Given active yesterday, scheduled today and tomorrow
    y = challenge(conn, yesterday, "active")
    t = challenge(conn, today, "scheduled")
    n = challenge(conn, tomorrow, "scheduled")
    # When
    summary = run_job(conn, JOB, as_of)
    # Then exactly yesterday's is archived and today's activated, both stamped with as_of
    assert summary == {**ZEROS, "challenges_archived": 1, "challenges_activated": 1}
    assert rows(conn, "SELECT id, status, activated_at, archived_at FROM daily_challenges ORDER BY id") == [
        (y, "archived", EARLIER, as_of),
        (t, "active", as_of, None),
        (n, "scheduled", None, None),
    ]


def test_the_guides_sql_call_runs_the_job_and_logs_it(conn):
    # Given today's scheduled challenge
    c = challenge(conn, date(2026, 11, 28), "scheduled")
    # When an operator runs the guide's statement
    result = conn.execute("SELECT reset_daily_challenges('2026-11-28T00:00:00Z') AS r").fetchone()["r"]
    # Then the work is done and the run log has the row, trigger 'sql'
    assert result == {**ZEROS, "challenges_activated": 1}
    assert rows(conn, "SELECT status FROM daily_challenges WHERE id = %s", (c,)) == [("active",)]
    assert rows(
        conn,
        """SELECT job_name, status, trigger, as_of, metadata->'summary'
                           FROM cron_job_logs""",
    ) == [("reset_daily_challenges", "succeeded", "sql", AS_OF, {**ZEROS, "challenges_activated": 1})]


def test_two_concurrent_runs_create_one_challenge(db_url):
    # Given an empty day and a pool, and two connections
    setup = connect(db_url)
    template(setup, "A")
    template(setup, "B")
    job = registry.get(JOB)
    first, second = connect(db_url), connect(db_url)
    results: list[dict[str, int]] = []

    def run_second() -> None:
        with transaction(second):
            results.append(execution.call_work(second, job, AS_OF))

    # When the first run has created (uncommitted) and the second starts meanwhile
    with transaction(first):
        assert execution.call_work(first, job, AS_OF)["challenges_created"] == 1
        thread = threading.Thread(target=run_second)
        thread.start()
        # wait until the second run is blocked on the first one's locks before committing (by
        # database, not by the client's pid: through a pooler that is not the server's)
        waiting = (
            "SELECT count(*) > 0 AS w FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        while thread.is_alive() and not setup.execute(waiting).fetchone()["w"]:
            time.sleep(0.01)
    thread.join()

    # Then the second created nothing, and one challenge and one used template exist
    assert results == [ZEROS]
    assert rows(setup, "SELECT title, challenge_date FROM daily_challenges") == [("A", date(2026, 11, 28))]
    assert rows(setup, "SELECT title, last_used_on FROM challenge_templates ORDER BY id") == [
        ("A", date(2026, 11, 28)),
        ("B", None),
    ]
    for c in (setup, first, second):
        c.close()


def test_the_documented_rollback_restores_the_tables(conn):
    # Given yesterday's active challenge with open progress, a scheduled one for tomorrow,
    # and an empty today that the run fills from the pool
    template(conn, "pool")
    c = challenge(conn, date(2026, 11, 27), "active")
    progress(conn, make_user(conn), c)
    challenge(conn, date(2026, 11, 29), "scheduled")
    before = snapshot(conn)
    run_job(conn, JOB, AS_OF)
    assert snapshot(conn) != before
    # When the statements of docs/jobs/reset-daily-challenges.md run with the run's as_of
    with conn.transaction():
        conn.execute("""UPDATE user_challenge_progress SET status = 'in_progress', closed_at = NULL
                         WHERE status = 'expired' AND closed_at = '2026-11-28T00:00:00Z'""")
        conn.execute("""UPDATE daily_challenges SET status = 'active', archived_at = NULL
                         WHERE archived_at = '2026-11-28T00:00:00Z'""")
        conn.execute("""UPDATE challenge_templates t SET last_used_on = NULL
                          FROM daily_challenges c
                         WHERE c.template_id = t.id AND c.auto_created AND c.created_at = '2026-11-28T00:00:00Z'""")
        conn.execute("DELETE FROM daily_challenges WHERE auto_created AND created_at = '2026-11-28T00:00:00Z'")
        conn.execute("""UPDATE daily_challenges SET status = 'scheduled', activated_at = NULL
                         WHERE activated_at = '2026-11-28T00:00:00Z'""")
    # Then the tables are as before the run
    assert snapshot(conn) == before


def statuses(conn: psycopg.Connection) -> list[tuple]:
    return rows(conn, "SELECT challenge_date, status FROM daily_challenges ORDER BY challenge_date, id")


@pytest.mark.parametrize("scheduled", [True, False], ids=["scheduled-challenges", "from-the-template-pool"])
def test_a_backfill_of_a_missed_day_after_a_later_day_leaves_only_the_latest_day_active(conn, scheduled):
    # Given days 11-27 and 11-28 with a scheduled challenge each (or none: the pool fills in)
    template(conn, "a")
    template(conn, "b")
    if scheduled:
        challenge(conn, date(2026, 11, 27), "scheduled")
        challenge(conn, date(2026, 11, 28), "scheduled")
    # When 11-28 runs on time, then the missed 11-27 is backfilled
    run_job(conn, JOB, AS_OF)
    run_job(conn, JOB, utc(2026, 11, 27))
    # Then 11-27 has its challenge, archived as the on-time order would have left it; 11-28's
    # is the only active one
    assert statuses(conn) == [(date(2026, 11, 27), "archived"), (date(2026, 11, 28), "active")]
    # And the next day runs as usual
    run_job(conn, JOB, utc(2026, 11, 29))
    assert [s for _, s in statuses(conn)] == ["archived", "archived", "active"]


def test_a_backfill_closes_progress_on_the_day_it_archives(conn):
    # Given 11-28 already ran, and progress a user started on 11-27's scheduled challenge
    user = make_user(conn)
    missed = challenge(conn, date(2026, 11, 27), "scheduled")
    challenge(conn, date(2026, 11, 28), "scheduled")
    run_job(conn, JOB, AS_OF)
    progress(conn, user, missed)
    # When 11-27 is backfilled
    summary = run_job(conn, JOB, utc(2026, 11, 27))
    # Then its challenge is activated and archived at once, the progress expired
    assert summary == {
        "challenges_archived": 1,
        "progress_expired": 1,
        "challenges_activated": 1,
        "challenges_created": 0,
    }
    assert progress_rows(conn) == [(user, missed, "expired", utc(2026, 11, 27))]
