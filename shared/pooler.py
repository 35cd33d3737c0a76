"""``jobctl doctor``'s first two checks: the server (:func:`server`), and whether a transaction
pooler sits between us and it (:func:`detect`). The pooler signs are heuristics, said as such
in the report (docs/moving-from-pg-cron.md): port 6543 (Supabase's); the server listening on
another port than the one dialled; one connection's transactions landing on different server
processes while a second client holds a transaction open.
"""

from __future__ import annotations

import threading
from typing import Any

from shared.db import Conn, close_quietly, connect
from shared.queries import load

Q = load("doctor")
SUPABASE_POOLER_PORT = 6543


def server(conn: Conn) -> dict[str, Any]:
    row = dict(conn.execute(Q["server"]).fetchone() or {})
    row.pop("backend_pid", None)
    row["supported"] = row["version_num"] >= 150000
    return row


def _dialled_port(conn: Conn) -> int | None:
    if conn.info.host.startswith("/"):  # a Unix socket: no port to compare
        return None
    try:
        return int(conn.info.port)
    except (TypeError, ValueError):
        return None


def detect(conn: Conn, url: str) -> dict[str, Any]:
    evidence: list[str] = []
    port = _dialled_port(conn)
    server_port = conn.execute(Q["server"]).fetchone()["server_port"]  # type: ignore[index]
    if port == SUPABASE_POOLER_PORT:
        evidence.append(f"port {port} is Supabase's transaction pooler (Supavisor)")
    if port is not None and server_port is not None and server_port != port:
        evidence.append(f"dialled port {port}, but the server listens on {server_port}: something is in between")
    moved = _backend_moves(conn, url)
    if moved:
        evidence.append(moved)
    return {
        "transaction_pooler": bool(moved) or port == SUPABASE_POOLER_PORT,
        "evidence": evidence,
        "method": "heuristic: port 6543, server port differs, server process changes between transactions",
    }


def _backend_moves(conn: Conn, url: str) -> str | None:
    """Whether this connection's transactions move between server processes (transaction pooling)."""
    first = conn.execute(Q["backend_pid"]).fetchone()["backend_pid"]  # type: ignore[index]
    other = connect(url)
    seen: dict[str, int] = {}

    def second() -> None:
        seen["pid"] = conn.execute(Q["backend_pid"]).fetchone()["backend_pid"]  # type: ignore[index]

    try:
        with other.transaction():
            held = other.execute(Q["backend_pid"]).fetchone()["backend_pid"]  # type: ignore[index]
            worker = threading.Thread(target=second, daemon=True)
            worker.start()
            worker.join(timeout=3)  # a pool of one server connection waits for ours to end
        worker.join(timeout=30)
    finally:
        close_quietly(other)
    if held == first:
        return "a second client connection was given this connection's server process"
    if "pid" in seen and seen["pid"] != first:
        return "this connection's second transaction ran on another server process"
    if "pid" not in seen or worker.is_alive():
        return "a transaction waited for another client's transaction to end (a pool of one server connection)"
    return None
