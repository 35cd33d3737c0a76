"""One database connection per process (per thread), reused across warm invocations.

A connection that went stale (server restart, idle timeout, pooler recycling) is
replaced transparently: :func:`get_connection` drops a broken one, and callers that
hit a dead socket on their first statement call :func:`reconnect` and try once more.
"""

from __future__ import annotations

import os
import threading

from shared import config
from shared.db import Conn, close_quietly, connect, is_usable
from shared.errors import DatabaseUnavailable

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
    """Discard the current connection and open a new one."""
    reset()
    return get_connection()


def reset() -> None:
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
