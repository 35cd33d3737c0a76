"""Each write-heavy job's floor: the plainest statement that writes the same rows, timed on
the same data in the same run and rolled back (``jobctl/sql/bench_floor.sql``).

The rows are collected first, untimed, into the session's temporary table ``bench_floor``:
after the job's real run, the rows it wrote (with the values it wrote); for
cleanup-expired-stories, before it, the stories it will delete. Then only the write is
timed, ``runs`` times, each in a transaction that is rolled back, so each starts from the
same state. ``ratio = job time / floor``: how far the job is from simply writing its rows.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from shared.db import transaction
from shared.queries import load

Q = load("bench_floor", Path(__file__).parent.parent / "sql")


@dataclass(frozen=True)
class Floor:
    table: str
    """The query naming ``bench_floor``'s shape, then ``<table>_collect`` and ``<table>_write``."""
    before_real_run: bool = False
    """Collected before the job's real run (the rows it deletes are gone after it)."""
    kind: str | None = None
    """For notifications: the kind the job inserts."""
    rows_key: str | None = None
    """The summary count of the rows the job wrote, when it may write fewer than the floor (a
    batched cleanup stopped by its budget): the ratio is then per row."""


FLOORS: dict[str, Floor] = {
    "update-user-streaks": Floor("streaks"),
    "send-daily-reminders": Floor("notifications", kind="streak_reminder"),
    "send-weekly-reports": Floor("notifications", kind="weekly_report"),
    "cleanup-expired-stories": Floor("stories", before_real_run=True, rows_key="stories_deleted"),
}


@dataclass(frozen=True)
class FloorTiming:
    floor_s: float
    rows: int
    runs_s: list[float]


def ratio(job_s: float, summary: dict[str, Any], floor: Floor, timing: FloorTiming) -> float | None:
    """The job's time over its floor's; per row when the job wrote fewer rows than the floor did."""
    if not timing.rows or not timing.floor_s:
        return None
    job_rows = summary.get(floor.rows_key) if floor.rows_key else None
    scale = job_rows / timing.rows if isinstance(job_rows, int) and job_rows else 1.0
    return round(job_s / (timing.floor_s * scale), 2)


def params(as_of: datetime, kind: str | None) -> dict[str, Any]:
    return {"as_of": as_of, "yesterday": (as_of - timedelta(days=1)).date(), "kind": kind}


def collect(conn: psycopg.Connection[Any], floor: Floor, as_of: datetime) -> int:
    """Fill ``bench_floor`` (committed, session-local) with the rows; return how many."""
    with transaction(conn):
        conn.execute(Q["drop"])
        conn.execute(Q[f"{floor.table}_table"])
        rows = conn.execute(Q[f"{floor.table}_collect"], params(as_of, floor.kind)).rowcount
        conn.execute(Q["analyze"])  # the write is planned with the real row count
        return rows


def time_write(conn: psycopg.Connection[Any], floor: Floor, rows: int, runs: int) -> FloorTiming:
    """The write of the collected rows, ``runs`` times, each rolled back; then ``bench_floor`` goes."""
    times: list[float] = []
    try:
        for _ in range(runs):
            with transaction(conn, rollback=True):
                started = time.perf_counter()
                cur = conn.execute(Q[f"{floor.table}_write"])
                times.append(time.perf_counter() - started)
                if cur.rowcount < rows:
                    raise RuntimeError(f"floor {floor.table}: wrote {cur.rowcount} rows, expected {rows}")
    finally:
        with transaction(conn):
            conn.execute(Q["drop"])
    return FloorTiming(statistics.median(times), rows, times)
