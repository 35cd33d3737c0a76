"""``jobctl demo``: the whole system on the embedded Postgres (rebuild, migrate, seed, simulate).

:func:`run_demo` does the work and returns a :class:`DemoReport`; the command prints it.
The demo starts from the same state every time (same seed, same window), so running it
again gives the same result. See docs/operate.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jobctl import embedded, local, output, schedules
from jobctl.databases import create_database
from jobctl.embedded import APP_DATABASE
from jobctl.runlog import fetch_logs, fetch_stats
from shared.errors import redact
from shared.events import iso
from shared.queries import load

Q = load("demo", Path(__file__).parent / "sql")

DEMO_USERS = 10_000
DEMO_DAYS = 8
DEMO_SEED = 42


def demo_start(now: datetime) -> datetime:
    """The 1st, 00:00 UTC, of the latest month whose 1st is at least nine days before ``now``.

    Eight days from there include the monthly jobs (1st, 02:00 and 03:00), a Sunday (the
    weekly job) and every daily and hourly job, and end at least a day before ``now``:
    the handler refuses an as_of in the future.
    """
    earliest = now.astimezone(UTC) - timedelta(days=9)
    return datetime(earliest.year, earliest.month, 1, tzinfo=UTC)


def demo_activity(conn: Any, day_start: datetime) -> int:
    """Record the demo app's user activity for the UTC day starting at ``day_start``; return how many."""
    row = conn.execute(Q["activity"], {"day_start": day_start, "day": day_start.toordinal()}).fetchone()
    return int(row["active"])


@dataclass
class DemoReport:
    database_url: str
    start: datetime
    end: datetime
    seed_rows: dict[str, int]
    outcomes: list[schedules.Outcome]
    simulate_seconds: float
    total_seconds: float
    stats: list[dict[str, Any]]
    last_runs: list[dict[str, Any]]

    @property
    def failed(self) -> int:
        return sum(o.status == "failed" for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "database_url": redact(self.database_url),
            "start": self.start,
            "end": self.end,
            "seed_rows": self.seed_rows,
            "runs": len(self.outcomes),
            "failed": self.failed,
            "simulate_seconds": round(self.simulate_seconds, 2),
            "total_seconds": round(self.total_seconds, 2),
            "jobs": output.tally_json(schedules.tally(self.outcomes)),
            "stats": self.stats,
            "last_runs": self.last_runs,
        }


def fresh_app_database(data_dir: Path) -> str:
    """The embedded server started, its app database dropped and created empty; its URL."""
    return create_database(embedded.start(data_dir).url(), APP_DATABASE, replace=True)


def run_demo(
    data_dir: Path, *, users: int, days: int, verbose: bool, on_step: Callable[[str], None] = output.note
) -> DemoReport:
    """Rebuild the embedded app database, migrate, seed ``users`` users, simulate ``days`` days of schedules."""
    from jobctl.seed import seed_with_progress
    from jobctl.simulation import simulate_with_progress
    from shared.db import connect
    from shared.migrations import discover_app, migrate

    started = time.monotonic()
    begin = demo_start(local.utcnow())
    end = begin + timedelta(days=days)
    with output.stderr().status("Starting the embedded Postgres ..."):
        url = fresh_app_database(data_dir)
    on_step(f"[1/4] embedded Postgres ready, database {APP_DATABASE!r} rebuilt ({time.monotonic() - started:.1f} s)")
    with connect(url) as conn:
        applied = migrate(conn, discover_app()) + migrate(conn)  # the reference app, then the jobs layer
        on_step(f"[2/4] {len(applied)} migrations applied ({time.monotonic() - started:.1f} s)")
        counts, seed_s = seed_with_progress(conn, users=users, as_of=begin, seed_value=DEMO_SEED)
        on_step(f"[3/4] seeded {users:,} users as of {iso(begin)} in {seed_s:.1f} s ({sum(counts.values()):,} rows)")
    on_step(f"[4/4] simulating {days} days of schedules: {iso(begin)} .. {iso(end)} (users stay active)")
    sim_started = time.monotonic()
    with connect(url) as app_conn:
        # The seed is the app as of `begin`; without new activity every streak would just
        # break on the second day. At each simulated midnight the day that ended gets its
        # activity (once a day, not hourly: every change of XP makes the hourly leaderboard
        # refresh rewrite its ranks, which the demo cannot afford).
        def app_activity(at: datetime) -> None:
            if at > begin and (at.hour, at.minute) == (0, 0):
                demo_activity(app_conn, at - timedelta(days=1))

        outcomes = simulate_with_progress(url, begin, end, retries=1, verbose=verbose, before=app_activity)
    sim_s = time.monotonic() - sim_started
    with connect(url) as conn:
        stats, last = fetch_stats(conn), fetch_logs(conn, job=None, failed=False, limit=15)
    return DemoReport(url, begin, end, counts, outcomes, sim_s, time.monotonic() - started, stats, last)
