"""cleanup-expired-stories: stories older than 24 h go, with their views and reactions,
in bounded batches, each committed on its own, within the time budget."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta
from types import MappingProxyType

import psycopg
import pytest

from shared import execution, registry
from shared.db import connect
from tests.factories import make_user, rows, run_job, utc

AS_OF = utc(2026, 11, 28, 12)
DAY = timedelta(hours=24)
TICK = timedelta(microseconds=1)


def story(
    conn: psycopg.Connection,
    user_id: int,
    created_at: datetime,
    *,
    viewers: tuple[int, ...] = (),
    reactions: tuple[tuple[int, str], ...] = (),
) -> int:
    sid = conn.execute(
        "INSERT INTO stories (user_id, created_at) VALUES (%s, %s) RETURNING id", (user_id, created_at)
    ).fetchone()["id"]
    for viewer in viewers:
        conn.execute(
            "INSERT INTO story_views (story_id, viewer_id, viewed_at) VALUES (%s, %s, %s)", (sid, viewer, created_at)
        )
    for who, emoji in reactions:
        conn.execute(
            "INSERT INTO story_reactions (story_id, user_id, reaction, created_at) VALUES (%s, %s, %s, %s)",
            (sid, who, emoji, created_at),
        )
    return sid


def batched(batch_size: int) -> registry.Job:
    """The registry's job with another batch size (the registry's own param, overridden)."""
    job = registry.get("cleanup-expired-stories")
    return dataclasses.replace(job, params=MappingProxyType({**job.params, "batch_size": batch_size}))


def snapshot(conn: psycopg.Connection) -> tuple[list, list, list]:
    return (
        rows(conn, "SELECT id, user_id, created_at FROM stories ORDER BY id"),
        rows(conn, "SELECT story_id, viewer_id FROM story_views ORDER BY 1, 2"),
        rows(conn, "SELECT story_id, user_id, reaction FROM story_reactions ORDER BY 1, 2, 3"),
    )


def test_deletes_stories_older_than_24h_with_views_and_reactions_and_keeps_the_rest(conn):
    # Given stories around the 24 h boundary, with views and reactions on old and new ones
    a, b, c = make_user(conn), make_user(conn), make_user(conn)
    old = story(conn, a, AS_OF - DAY - TICK, viewers=(b, c), reactions=((b, "heart"), (c, "fire"), (c, "heart")))
    older = story(conn, b, AS_OF - 3 * DAY, viewers=(a,))
    exactly_24h = story(conn, a, AS_OF - DAY, viewers=(b,), reactions=((b, "heart"),))
    fresh = story(conn, c, AS_OF - timedelta(hours=1), viewers=(a, b), reactions=((a, "fire"),))
    future = story(conn, c, AS_OF + timedelta(hours=1))  # posted after as_of (a replayed run)

    # When the job runs
    summary = run_job(conn, "cleanup-expired-stories", AS_OF)

    # Then exactly the two stories older than 24 h are gone, with what hung off them;
    # a story exactly 24 h old is kept
    assert summary == {
        "stories_deleted": 2,
        "views_deleted": 3,
        "reactions_deleted": 3,
        "batches": 1,
        "stories_remaining": 0,
    }
    stories, views, reactions = snapshot(conn)
    assert [s[0] for s in stories] == [exactly_24h, fresh, future]
    assert views == sorted([(exactly_24h, b), (fresh, a), (fresh, b)])
    assert reactions == [(exactly_24h, b, "heart"), (fresh, a, "fire")]
    assert old not in {s[0] for s in stories} and older not in {s[0] for s in stories}


def test_second_run_with_same_as_of_changes_nothing(conn):
    a, b = make_user(conn), make_user(conn)
    story(conn, a, AS_OF - 2 * DAY, viewers=(b,), reactions=((b, "heart"),))
    story(conn, a, AS_OF - DAY, viewers=(b,))
    run_job(conn, "cleanup-expired-stories", AS_OF)
    before = snapshot(conn)

    summary = run_job(conn, "cleanup-expired-stories", AS_OF)

    assert summary == {
        "stories_deleted": 0,
        "views_deleted": 0,
        "reactions_deleted": 0,
        "batches": 1,
        "stories_remaining": 0,
    }
    assert snapshot(conn) == before


def test_a_backlog_larger_than_one_batch_is_deleted_in_several_batches_oldest_first(conn):
    # Given 7 expired stories (each with a view) and 1 fresh one, and batches of 3
    a, b = make_user(conn), make_user(conn)
    expired = [story(conn, a, AS_OF - DAY - timedelta(hours=10 - i), viewers=(b,)) for i in range(7)]
    fresh = story(conn, a, AS_OF, viewers=(b,))

    # When the executor runs it with a full budget
    summary = execution.execute(conn, batched(3), AS_OF, deadline=time.monotonic() + 60)

    # Then three batches (3 + 3 + 1) delete the whole backlog and nothing is left
    assert summary == {
        "stories_deleted": 7,
        "views_deleted": 7,
        "reactions_deleted": 0,
        "batches": 3,
        "stories_remaining": 0,
    }
    assert rows(conn, "SELECT id FROM stories") == [(fresh,)]
    assert rows(conn, "SELECT story_id FROM story_views") == [(fresh,)]
    assert len(expired) == 7


def test_when_the_budget_runs_out_the_done_batches_stay_committed_and_what_is_left_is_reported(conn, db_url):
    # Given 7 expired stories, batches of 3, and a budget too short to start a second batch
    a = make_user(conn)
    expired = [story(conn, a, AS_OF - DAY - timedelta(hours=10 - i)) for i in range(7)]
    short = time.monotonic() + execution.MIN_BATCH_BUDGET_MS / 1000 - 0.5

    # When the executor runs
    summary = execution.execute(conn, batched(3), AS_OF, deadline=short)

    # Then one batch ran (the 3 oldest), it is committed (seen from another connection),
    # and the summary says 4 stories are left for the next run
    assert summary == {
        "stories_deleted": 3,
        "views_deleted": 0,
        "reactions_deleted": 0,
        "batches": 1,
        "stories_remaining": 4,
    }
    other = connect(db_url)
    try:
        assert rows(other, "SELECT id FROM stories ORDER BY id") == [(i,) for i in expired[3:]]
    finally:
        other.close()

    # And the next run finishes the backlog
    assert run_job(conn, "cleanup-expired-stories", AS_OF)["stories_deleted"] == 4


def test_each_batch_is_its_own_transaction(conn, db_url):
    # Given 5 expired stories and batches of 2; a finish hook that fails in the last batch
    a = make_user(conn)
    for i in range(5):
        story(conn, a, AS_OF - DAY - timedelta(hours=10 - i))

    def fail(_summary):
        raise RuntimeError("boom in the final transaction")

    # When the last batch's transaction fails
    with pytest.raises(RuntimeError):
        execution.execute(conn, batched(2), AS_OF, deadline=time.monotonic() + 60, finish=fail)

    # Then the two earlier batches stay committed and only the last batch rolled back
    assert rows(conn, "SELECT count(*) FROM stories") == [(1,)]


def test_dry_run_changes_nothing_and_reports_one_batch(conn):
    a, b = make_user(conn), make_user(conn)
    story(conn, a, AS_OF - 2 * DAY, viewers=(b,), reactions=((b, "heart"),))
    story(conn, a, AS_OF - 2 * DAY, viewers=(b,))
    story(conn, a, AS_OF)
    before = snapshot(conn)

    summary = run_job(conn, "cleanup-expired-stories", AS_OF, dry_run=True)

    assert summary == {
        "stories_deleted": 2,
        "views_deleted": 2,
        "reactions_deleted": 1,
        "batches": 1,
        "stories_remaining": 0,
    }
    assert snapshot(conn) == before


def test_guide_call_does_one_batch_and_is_logged(conn):
    # Given an expired story; When an operator runs the guide's SELECT cleanup_expired_stories()
    a = make_user(conn)
    story(conn, a, AS_OF - 2 * DAY)
    summary = conn.execute("SELECT cleanup_expired_stories(%s) AS s", (AS_OF,)).fetchone()["s"]

    # Then it deleted the story and left a succeeded 'sql' row in cron_job_logs
    assert summary == {
        "stories_deleted": 1,
        "views_deleted": 0,
        "reactions_deleted": 0,
        "batches": 1,
        "stories_remaining": 0,
    }
    assert rows(conn, "SELECT job_name, status, trigger, as_of, metadata->'summary' FROM cron_job_logs") == [
        ("cleanup_expired_stories", "succeeded", "sql", AS_OF, summary)
    ]
    assert rows(conn, "SELECT count(*) FROM stories") == [(0,)]


def test_summary_keys_are_the_registry_keys(conn):
    summary = run_job(conn, "cleanup-expired-stories", AS_OF)
    assert set(summary) == set(registry.get("cleanup-expired-stories").summary_keys)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_a_batch_size_below_one_is_refused(conn, batch_size):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="batch_size"):
        conn.execute("SELECT job_cleanup_expired_stories(%s, %s)", (AS_OF, batch_size))
