"""Reading the run log (``cron_job_logs``, ``v_cron_job_stats``) for jobctl; SQL in ``sql/ops.sql``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.errors import translate
from shared.queries import load

Q = load("ops", Path(__file__).parent / "sql")


def fetch_logs(conn: Any, *, job: str | None, failed: bool, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` runs, newest first (of ``job`` only, failed only, when asked)."""
    return list(conn.execute(Q["logs"], {"job": job, "failed": failed, "limit": limit}).fetchall())


def fetch_stats(conn: Any) -> list[dict[str, Any]]:
    return list(conn.execute(Q["stats"]).fetchall())


def last_runs(url: str | None) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Each job's last run by name, and why there are none (no URL, database unreachable)."""
    if not url:
        return {}, "no DATABASE_URL: showing the rules only"
    from shared.db import connect

    try:
        with connect(url) as conn:
            rows = conn.execute(Q["last_runs"]).fetchall()
    except Exception as exc:
        return {}, f"database not reachable ({translate(exc, what='reading cron_job_logs')}): rules only"
    return {r["job_name"]: r for r in rows}, None
