"""update-user-streaks, send-daily-reminders and send-weekly-reports in bounded batches by user range (registry:
mode BATCHED, resumable): with a tiny batch size an occurrence takes many batches, each its
own transaction, and ends with exactly the rows and counts of the whole occurrence done in
one call (the guide's hand call); a run cut off by its budget is recorded failed, and the
next delivery resumes after its committed batches; concurrent runs do the work once."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import date, datetime
from types import MappingProxyType

import psycopg
import pytest

from shared import execution, registry
from shared.db import reset_connection
from shared.errors import JobTimeout
from shared.events import RunRequest, Trigger
from shared.observability import metrics
from shared.runner import Status, run
from tests.factories import challenge_progress, make_user, record_activity, rows, send_message, set_streak, utc

STREAKS = "update-user-streaks"
REMINDERS = "send-daily-reminders"
WEEKLY = "send-weekly-reports"
AS_OF = utc(2026, 11, 28)  # streaks: the ledger has 11-24, so 11-25, 11-26 and 11-27 are due
EVENING = utc(2026, 11, 28, 18)
SUNDAY = utc(2026, 11, 29)  # the weekly report of 11-22 .. 11-28 (its Saturday not processed yet)
#: Each job at its occurrence, after what runs before it that day.
OCCURRENCES = [(STREAKS, AS_OF), (REMINDERS, EVENING), (WEEKLY, SUNDAY)]


def tiny(name: str, batch_size: int) -> registry.Job:
    """The registry's job with another batch size (everything else as registered)."""
    job = registry.get(name)
    assert job.mode is registry.Mode.BATCHED and job.resumable and "batch_size" in job.params
    sizes = {k: batch_size for k in job.params if k.endswith("batch_size")}
    return dataclasses.replace(job, params=MappingProxyType({**job.params, **sizes}))


def before(conn: psycopg.Connection, name: str) -> None:
    """The streaks of 11-25 .. 11-27, which the reminders and the weekly report read."""
    if name != STREAKS:
        execute(conn, registry.get(STREAKS), AS_OF)


def execute(conn: psycopg.Connection, job: registry.Job, as_of: datetime, seconds: float = 60) -> dict:
    return execution.execute(conn, job, as_of, deadline=time.monotonic() + seconds)


def whole(conn: psycopg.Connection, name: str, as_of: datetime) -> tuple[dict, dict]:
    """The occurrence done in one call (the guide's hand call path), rolled back: (summary, state)."""
    function = registry.get(name).work_function
    with conn.transaction(force_rollback=True):
        summary = conn.execute(f"SELECT {function}(%s) AS s", (as_of,)).fetchone()["s"]
        return summary, state(conn)


def state(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """What the jobs write (updated_at, the real time of the change, left out)."""
    return {
        "streaks": rows(
            conn,
            """SELECT user_id, current_streak, longest_streak, previous_streak_value, previous_longest_streak,
                      streak_day, week_end_day, week_end_streak
                 FROM user_gamification ORDER BY user_id""",
        ),
        "ledger": rows(conn, "SELECT * FROM streak_days ORDER BY day"),
        "notifications": rows(
            conn, "SELECT user_id, kind, dedup_key, payload, created_at FROM notifications ORDER BY user_id, kind"
        ),
    }


@pytest.fixture
def app(conn):
    """25 users over three days: streaks that grow, break, start; banned and deleted users; users
    without a row yet; reminders off; active today before and after 18:00. Ledger: 11-24 done.
    Messages between users far apart by id (so a batch's users talk to other batches' users),
    repeated, to themselves, deleted and outside the week; challenges completed in and out of it."""
    conn.execute(
        "INSERT INTO streak_days (day, processed_as_of, streaks_incremented, streaks_broken, users_with_streak) "
        "VALUES ('2026-11-24', '2026-11-25', 0, 0, 0)"
    )
    for i in range(25):
        status = {7: "banned", 13: "deleted"}.get(i, "active")
        user = make_user(conn, account_status=status, reminders_enabled=i % 6 != 5)
        if i % 5 != 4:  # every fifth user has no row yet
            set_streak(conn, user, i % 4, 3 + i % 3)
        for day in (25, 26, 27):
            if (i * 7 + day) % 3 != 0:
                record_activity(conn, user, utc(2026, 11, day, 9))
        if i % 4 == 1:
            record_activity(conn, user, utc(2026, 11, 28, 10 if i % 8 == 1 else 20))  # before / after 18:00
    users = [r[0] for r in rows(conn, "SELECT id FROM users ORDER BY id")]
    for i, sender in enumerate(users):
        for k, day in enumerate((21, 22, 26, 28, 29)):  # 11-21 and 11-29: outside the week
            recipient = users[(i * 7 + k * 11 + 3) % len(users)]
            send_message(conn, sender, recipient, utc(2026, 11, day, 23, 59, 59), deleted=(i + k) % 9 == 0)
            send_message(conn, sender, recipient, utc(2026, 11, day, 0))
        if i % 3 == 0:
            challenge_progress(conn, sender, utc(2026, 11, 22 + i % 8), date(2026, 11, 22 + i % 8))
    return conn


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_streaks_in_tiny_batches_end_exactly_as_the_whole_occurrence_in_one_call(app, batch_size):
    conn = app
    expected_summary, expected = whole(conn, STREAKS, AS_OF)
    assert expected_summary["days_processed"] == 3 and expected_summary["streaks_incremented"] > 0
    # When the runner's executor does it in batches of batch_size users
    summary = execute(conn, tiny(STREAKS, batch_size), AS_OF)
    # Then the same rows and the same whole-occurrence counts, one ledger row per day
    assert summary == expected_summary
    assert state(conn) == expected
    # and no progress is left behind: the ledger says the days are done
    assert rows(conn, "SELECT * FROM job_batch_progress WHERE job_name = %s", (STREAKS,)) == []
    # and a re-run is a no-op
    assert execute(conn, tiny(STREAKS, batch_size), AS_OF) == {
        "days_processed": 0,
        "streaks_incremented": 0,
        "streaks_broken": 0,
    }


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize(("name", "as_of"), OCCURRENCES[1:])
def test_notifications_in_tiny_batches_end_exactly_as_the_whole_occurrence_in_one_call(app, name, as_of, batch_size):
    conn = app
    before(conn, name)
    expected_summary, expected = whole(conn, name, as_of)
    assert expected_summary["notifications_created"] > 3
    summary = execute(conn, tiny(name, batch_size), as_of)
    assert summary == expected_summary
    assert state(conn) == expected
    assert rows(conn, "SELECT done, counts FROM job_batch_progress WHERE job_name = %s", (name,)) == [
        (True, expected_summary)
    ]
    # in bounded batches: none held more than batch_size users
    users = conn.execute("SELECT count(*) AS n FROM users").fetchone()["n"]
    assert batches_done(conn, name) >= -(-users // batch_size)
    # a completed occurrence delivered again does nothing
    assert execute(conn, tiny(name, batch_size), as_of) == {**expected_summary, "notifications_created": 0}
    assert state(conn) == expected


def batches_done(conn: psycopg.Connection, name: str) -> int:
    """The occurrence's committed batches."""
    query = "SELECT coalesce(sum(batches), 0) AS n FROM job_batch_progress WHERE job_name LIKE %s"
    return conn.execute(query, (name + "%",)).fetchone()["n"]


def cut_off(conn: psycopg.Connection, job: registry.Job, as_of: datetime) -> None:
    """A delivery whose budget allows exactly one batch (below MIN_BATCH_BUDGET_MS left after it)."""
    with pytest.raises(execution.BatchesLeft, match="resumes after them") as raised:
        execute(conn, job, as_of, seconds=execution.MIN_BATCH_BUDGET_MS / 1000)
    assert isinstance(raised.value, JobTimeout)


@pytest.mark.parametrize(("name", "as_of"), OCCURRENCES)
def test_a_cut_off_occurrence_resumes_and_ends_as_an_uncut_one(app, name, as_of):
    conn = app
    before(conn, name)
    expected_summary, expected = whole(conn, name, as_of)
    job = tiny(name, 2)
    # Given a delivery stopped by its budget after one batch, then another after one more
    cut_off(conn, job, as_of)
    after_one = state(conn)
    assert after_one != expected  # the first batch is committed, the occurrence is not done
    assert batches_done(conn, name) == 1
    cut_off(conn, job, as_of)
    assert batches_done(conn, name) == 2
    # When the next delivery runs with time enough
    summary = execute(conn, job, as_of)
    # Then it resumed after the committed batches: the whole occurrence's counts and rows
    assert summary == expected_summary
    assert state(conn) == expected


def test_the_guides_hand_call_finishes_an_occurrence_a_cut_off_run_started(app):
    conn = app
    expected_summary, expected = whole(conn, STREAKS, AS_OF)
    cut_off(conn, tiny(STREAKS, 3), AS_OF)
    assert conn.execute("SELECT update_user_streaks(%s) AS r", (AS_OF,)).fetchone()["r"] == expected_summary
    assert state(conn) == expected


@pytest.mark.parametrize(("name", "as_of"), OCCURRENCES)
def test_concurrent_runs_of_one_occurrence_do_the_work_once(app, db_url, name, as_of):
    conn = app
    before(conn, name)
    _, expected = whole(conn, name, as_of)
    job = tiny(name, 2)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as own:
                execute(own, job, as_of)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert state(conn) == expected


@pytest.fixture
def runner_db(db_url, app, monkeypatch):
    """The runner's connection pointed at the test database."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    reset_connection()
    yield app
    reset_connection()
    metrics.clear_metrics()


def test_the_runner_records_a_cut_off_run_failed_and_the_retry_succeeds_with_the_whole_counts(runner_db, monkeypatch):
    conn = runner_db
    expected_summary, expected = whole(conn, STREAKS, AS_OF)
    job = tiny(STREAKS, 2)
    request = RunRequest(job=job, as_of=AS_OF, trigger=Trigger.SCHEDULE)
    # Given a delivery whose budget (the Lambda's time left) allows one batch
    with pytest.raises(JobTimeout):
        run(request, budget_s=execution.MIN_BATCH_BUDGET_MS / 1000)
    first = conn.execute("SELECT status, error_message, metadata FROM cron_job_logs ORDER BY id").fetchall()
    assert [r["status"] for r in first] == ["failed"]
    assert "resumes after them" in first[0]["error_message"]
    # marked as leaving the occurrence to run: the watchdog's catch-up resumes it too
    assert first[0]["metadata"]["deferred"] == "batches"
    assert first[0]["metadata"]["error_type"] == "BatchesLeft"
    # When it is delivered again (the Lambda retry)
    result = run(request)
    # Then it succeeds with the whole occurrence's counts and rows, recorded as such
    assert result.status is Status.SUCCEEDED
    assert result.summary == expected_summary
    assert state(conn) == expected
    logged = conn.execute("SELECT metadata FROM cron_job_logs WHERE status = 'succeeded'").fetchone()
    assert logged["metadata"]["summary"] == expected_summary
    assert conn.execute("SELECT streaks_done_for(%s) AS done", (AS_OF,)).fetchone()["done"]
    assert rows(conn, "SELECT day FROM streak_days WHERE processed_as_of = %s ORDER BY day", (AS_OF,)) == [
        (date(2026, 11, 25),),
        (date(2026, 11, 26),),
        (date(2026, 11, 27),),
    ]
