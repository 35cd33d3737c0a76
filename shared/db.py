"""Connections and transactions, safe behind a transaction-mode pooler (Supabase's port 6543,
RDS Proxy): autocommit, no prepared statements, timeouts set transaction-locally, no session
advisory lock (README, "The run: exactly once per occurrence"). One connection per thread,
reused across warm invocations; a stale one is replaced (:func:`get_connection`) or its work
retried once on a new one (:func:`with_reconnect`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

import psycopg
from psycopg.rows import DictRow, dict_row

from shared import config
from shared.errors import DatabaseUnavailable, register_secret_url, translate

#: A connection returning rows as dicts (what :func:`connect` opens).
Conn = psycopg.Connection[DictRow]
T = TypeVar("T")

APPLICATION_NAME = "scheduled-jobs"
CONNECT_TIMEOUT_S = 10


def connect(url: str) -> Conn:
    """Open an autocommit connection that works through a transaction-mode pooler.

    Raises :class:`shared.errors.DatabaseUnavailable` (with the password redacted).
    """
    register_secret_url(url)
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            prepare_threshold=None,  # no server-side prepared statements: pooler-safe
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=APPLICATION_NAME,
            row_factory=dict_row,
        )
    except Exception as exc:
        raise translate(exc, what="connecting to the database") from None


@contextmanager
def transaction(conn: Conn, *, timeout_ms: int | None = None, rollback: bool = False) -> Iterator[Conn]:
    """A transaction with transaction-local statement and lock timeouts.

    With ``rollback=True`` the work is rolled back at the end (dry runs).
    """
    with conn.transaction(force_rollback=rollback):
        if timeout_ms is not None:
            budget = str(max(1, int(timeout_ms)))
            conn.execute(
                "SELECT set_config('statement_timeout', %(t)s, true), set_config('lock_timeout', %(t)s, true)",
                {"t": budget},
            )
        yield conn


def is_usable(conn: Conn | None) -> bool:
    """True when ``conn`` is open and idle (not broken, not inside a transaction)."""
    return (
        conn is not None
        and not conn.closed
        and not conn.broken
        and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    )


def close_quietly(conn: Conn | None) -> None:
    if conn is not None:
        with suppress(Exception):  # closing a dead connection may fail; nothing to do
            conn.close()


# One per thread: Lambda runs one invocation at a time, but the local scheduler and the
# tests run jobs on several threads, and a psycopg connection must not be shared.
_local = threading.local()


def get_connection() -> Conn:
    """This thread's connection, opened on first use (or after it broke)."""
    conn = getattr(_local, "conn", None)
    if not is_usable(conn):
        close_quietly(conn)
        _local.conn = None
        _local.conn = _open()
    return _local.conn


def reconnect() -> Conn:
    """Discard this thread's connection and open a new one."""
    reset_connection()
    return get_connection()


def with_reconnect(
    work: Callable[[Conn], T], conn: Conn, get_connection: Callable[[], Conn] = get_connection
) -> tuple[Conn, T]:
    """``work(conn)``, and the connection it ran on. A connection that went stale between warm
    invocations fails on its first statement: then it is dropped and ``work`` runs once more
    on a new one (``work`` must be safe to repeat: nothing of it was committed)."""
    try:
        return conn, work(conn)
    except (psycopg.OperationalError, psycopg.InterfaceError):
        from shared.observability import logger

        logger.info("database connection was stale; reconnecting")
        reset_connection()
        conn = get_connection()
        return conn, work(conn)


def reset_connection() -> None:
    """Close this thread's connection (the next :func:`get_connection` opens a new one)."""
    close_quietly(getattr(_local, "conn", None))
    _local.conn = None


def _open() -> Conn:
    try:
        return connect(config.database_url())
    except DatabaseUnavailable:
        if os.environ.get("DATABASE_URL") or not os.environ.get("DATABASE_SECRET_ARN"):
            raise
        # The secret may have been rotated since it was cached: fetch it once more.
        return connect(config.database_url(refresh=True))


def open_maintenance_connection() -> Conn | None:
    """A new connection as the schema owner for database-maintenance's VACUUM, when one is
    configured (:func:`shared.config.maintenance_database_url`); the caller closes it."""
    url = config.maintenance_database_url()
    return connect(url) if url else None
