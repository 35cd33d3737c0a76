"""cleanup-expired-sessions: expired typing indicators deleted; users silent for more than
15 minutes marked offline at as_of."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from tests.factories import make_user, rows, run_job, utc

AS_OF = utc(2026, 11, 28, 17, 15)
TICK = timedelta(microseconds=1)
QUARTER = timedelta(minutes=15)


def typing(conn: psycopg.Connection, conversation: int, user_id: int, expires_at: datetime) -> None:
    conn.execute(
        "INSERT INTO typing_indicators (conversation_id, user_id, started_at, expires_at) VALUES (%s, %s, %s, %s)",
        (conversation, user_id, expires_at - timedelta(seconds=10), expires_at),
    )


def presence(
    conn: psycopg.Connection, user_id: int, online: bool, heartbeat: datetime, went_offline_at: datetime | None = None
) -> None:
    conn.execute(
        "INSERT INTO user_presence (user_id, is_online, last_heartbeat_at, went_offline_at) VALUES (%s, %s, %s, %s)",
        (user_id, online, heartbeat, went_offline_at),
    )


def state(conn: psycopg.Connection) -> tuple[list, list]:
    return (
        rows(conn, "SELECT conversation_id, user_id, expires_at FROM typing_indicators ORDER BY 1, 2"),
        rows(conn, "SELECT user_id, is_online, last_heartbeat_at, went_offline_at FROM user_presence ORDER BY 1"),
    )


def test_typing_indicators_strictly_past_expiry_are_deleted(conn):
    # Given indicators expiring just before, exactly at, and after as_of
    u = make_user(conn)
    typing(conn, 1, u, AS_OF - TICK)
    typing(conn, 2, u, AS_OF - timedelta(hours=3))
    typing(conn, 3, u, AS_OF)  # at exactly expires_at it still stands
    typing(conn, 4, u, AS_OF + timedelta(seconds=5))

    summary = run_job(conn, "cleanup-expired-sessions", AS_OF)

    assert summary == {"typing_indicators_deleted": 2, "users_marked_offline": 0}
    assert state(conn)[0] == [(3, u, AS_OF), (4, u, AS_OF + timedelta(seconds=5))]


def test_users_silent_for_more_than_15_minutes_go_offline_at_as_of(conn):
    # Given online users around the 15-minute boundary and users already offline
    just_over, exactly, recent, offline, ahead = (make_user(conn) for _ in range(5))
    presence(conn, just_over, True, AS_OF - QUARTER - TICK)
    presence(conn, exactly, True, AS_OF - QUARTER)  # exactly 15 min: still online
    presence(conn, recent, True, AS_OF - timedelta(minutes=1))
    presence(conn, offline, False, AS_OF - timedelta(days=2), went_offline_at=AS_OF - timedelta(days=2))
    presence(conn, ahead, True, AS_OF + timedelta(minutes=5))  # heartbeat after as_of (a replay)

    summary = run_job(conn, "cleanup-expired-sessions", AS_OF)

    # Then only the user silent for more than 15 minutes went offline, stamped with as_of;
    # the user already offline keeps its original went_offline_at
    assert summary == {"typing_indicators_deleted": 0, "users_marked_offline": 1}
    assert state(conn)[1] == [
        (just_over, False, AS_OF - QUARTER - TICK, AS_OF),
        (exactly, True, AS_OF - QUARTER, None),
        (recent, True, AS_OF - timedelta(minutes=1), None),
        (offline, False, AS_OF - timedelta(days=2), AS_OF - timedelta(days=2)),
        (ahead, True, AS_OF + timedelta(minutes=5), None),
    ]


def test_second_run_with_same_as_of_changes_nothing(conn):
    a, b = make_user(conn), make_user(conn)
    typing(conn, 1, a, AS_OF - timedelta(minutes=1))
    typing(conn, 2, b, AS_OF + timedelta(minutes=1))
    presence(conn, a, True, AS_OF - timedelta(hours=1))
    presence(conn, b, True, AS_OF)
    assert run_job(conn, "cleanup-expired-sessions", AS_OF) == {
        "typing_indicators_deleted": 1,
        "users_marked_offline": 1,
    }
    before = state(conn)

    assert run_job(conn, "cleanup-expired-sessions", AS_OF) == {
        "typing_indicators_deleted": 0,
        "users_marked_offline": 0,
    }
    assert state(conn) == before


def test_dry_run_changes_nothing(conn):
    a = make_user(conn)
    typing(conn, 1, a, AS_OF - timedelta(minutes=1))
    presence(conn, a, True, AS_OF - timedelta(hours=1))
    before = state(conn)

    summary = run_job(conn, "cleanup-expired-sessions", AS_OF, dry_run=True)

    assert summary == {"typing_indicators_deleted": 1, "users_marked_offline": 1}
    assert state(conn) == before


def test_guide_call_is_logged(conn):
    a = make_user(conn)
    presence(conn, a, True, AS_OF - timedelta(hours=1))
    summary = conn.execute("SELECT cleanup_expired_sessions(%s) AS s", (AS_OF,)).fetchone()["s"]
    assert summary == {"typing_indicators_deleted": 0, "users_marked_offline": 1}
    assert rows(conn, "SELECT job_name, status, trigger FROM cron_job_logs") == [
        ("cleanup_expired_sessions", "succeeded", "sql")
    ]
