"""Small builders for hand-made fixtures (exact rows, exact expectations).

Every builder takes the test's autocommit connection and returns ids, so a test
reads as: given these rows, when the job runs at as_of, then exactly these rows.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from jobctl.local import LambdaContext
from shared import execution, registry


def utc(*args: int) -> datetime:
    """``utc(2026, 11, 28, 18)`` -> an aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def lambda_context(function_name: str, *, remaining_s: int = 90) -> LambdaContext:
    """The tests' Lambda context (jobctl's local one), with ``remaining_s`` left when created."""
    return LambdaContext(
        function_name=function_name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:eu-west-1:123456789012:function:{function_name}",
        timeout_s=remaining_s,
    )


_counter = iter(range(1, 10**9))


def make_user(conn: psycopg.Connection, **columns: Any) -> int:
    """Insert a user (good standing by default) and return its id. Any users column may be given."""
    n = next(_counter)
    values = {"username": f"user{n}", "email": f"user{n}@example.test", "created_at": utc(2026, 1, 1), **columns}
    names = ", ".join(values)
    marks = ", ".join(f"%({k})s" for k in values)
    row = conn.execute(f"INSERT INTO users ({names}) VALUES ({marks}) RETURNING id", values).fetchone()
    return row["id"]


def record_activity(
    conn: psycopg.Connection, user_id: int, at: datetime, *, xp: int = 0, messages: int = 0, stories: int = 0
) -> None:
    """The app's own way to record activity (keeps user_daily_activity and last_active_at in step)."""
    conn.execute("SELECT record_activity(%s, %s, %s, %s, %s)", (user_id, at, xp, messages, stories))


def set_streak(
    conn: psycopg.Connection, user_id: int, current: int, longest: int | None = None, total_xp: int = 0
) -> None:
    conn.execute(
        """INSERT INTO user_gamification (user_id, current_streak, longest_streak, total_xp)
           VALUES (%s, %s, %s, %s)
           ON CONFLICT (user_id) DO UPDATE SET current_streak = excluded.current_streak,
                  longest_streak = excluded.longest_streak, total_xp = excluded.total_xp""",
        (user_id, current, current if longest is None else longest, total_xp),
    )


def send_message(conn: psycopg.Connection, sender: int, recipient: int, at: datetime, deleted: bool = False) -> None:
    conn.execute(
        """INSERT INTO messages (conversation_id, sender_id, recipient_id, created_at, is_deleted)
                    VALUES (1, %s, %s, %s, %s)""",
        (sender, recipient, at, deleted),
    )


def challenge_progress(
    conn: psycopg.Connection, user_id: int, completed_at: datetime | None, challenge_date: date
) -> None:
    """A challenge on ``challenge_date`` and the user's progress on it (completed when ``completed_at``)."""
    challenge = conn.execute(
        """INSERT INTO daily_challenges (title, challenge_date, status)
                                VALUES ('c', %s, 'active') RETURNING id""",
        (challenge_date,),
    ).fetchone()["id"]
    conn.execute(
        """INSERT INTO user_challenge_progress (user_id, challenge_id, status, completed_at)
                    VALUES (%s, %s, %s, %s)""",
        (user_id, challenge, "completed" if completed_at else "in_progress", completed_at),
    )


def run_job(conn: psycopg.Connection, name: str, as_of: datetime, *, dry_run: bool = False) -> dict[str, int]:
    """Run a job's SQL the way the runner does (by its mode), without the run log."""
    job = registry.get(name)
    return execution.execute(conn, job, as_of, deadline=time.monotonic() + job.timeout_s, dry_run=dry_run)


def rows(conn: psycopg.Connection, query: str, params: Any = None) -> list[tuple]:
    """The query's rows as plain tuples (easy to compare with an exact expectation)."""
    return [tuple(r.values()) for r in conn.execute(query, params).fetchall()]
