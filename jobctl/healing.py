"""Job state, catch-up and backfill for jobctl: ``pause``/``resume``/``reschedule`` in the
database, ``watchdog`` run locally, ``describe`` and ``backfill`` (docs/operate.md).

The logic is shared with the Lambdas (:mod:`shared.schedule_state`, :mod:`shared.watchdog`,
:mod:`shared.catchup`); this module opens the database, runs the catch-up in this process
with the handler's output kept off stdout, and gathers what the commands print.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jobctl import local
from shared import catchup, db, queries, registry, schedule_state, watchdog
from shared.cron import next_fire_times
from shared.db import Conn, connect
from shared.errors import JobsError, ValidationError
from shared.events import iso
from shared.observability import metrics

Q = queries.load("healing", Path(__file__).parent / "sql")
#: How far back ``describe`` and ``backfill`` look for a job's occurrences at most.
MAX_RANGE = timedelta(days=366)


def operator() -> str:
    """Who is making a change: ``user@host`` of this shell."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container without one)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


# --------------------------------------------------------------------------- running in this process


@contextmanager
def in_process(url: str, verbose: bool = False) -> Iterator[None]:
    """Run the runner here against ``url``: its connection from DATABASE_URL, its output off stdout."""
    db.reset_connection()
    with local._environment({"DATABASE_URL": url}), local._handler_output(verbose):
        try:
            yield
        finally:
            db.reset_connection()
            metrics.clear_metrics()


def run_watchdog(
    url: str,
    now: datetime,
    *,
    since: datetime | None = None,
    catch_up: bool = False,
    jobs: tuple[registry.Job, ...] = registry.JOBS,
    on_outcome: Callable[[catchup.Outcome], None] | None = None,
    verbose: bool = False,
) -> tuple[watchdog.Check, list[catchup.Outcome]]:
    """The watchdog's check at ``now`` (and its catch-up); the check is taken again after a catch-up."""
    with connect(url) as conn:
        found = watchdog.check(conn, now, since=since, jobs=jobs)
    if not catch_up or not found.to_catch_up:
        return found, []
    with in_process(url, verbose):
        outcomes = catchup.catch_up(found, after_run=metrics.clear_metrics, on_outcome=on_outcome)
    with connect(url) as conn:
        return watchdog.check(conn, now, since=since, jobs=jobs), outcomes


# --------------------------------------------------------------------------- describe


def _occurrence_runs(conn: Conn, job: registry.Job, as_ofs: list[datetime]) -> list[dict[str, Any]]:
    return list(conn.execute(Q["occurrence_runs"], {"job_name": job.name, "as_ofs": as_ofs}).fetchall())


def _previous(cron: str, now: datetime, count: int) -> list[datetime]:
    from croniter import croniter

    it = croniter(cron, now + timedelta(microseconds=1))  # an occurrence at ``now`` itself counts
    return sorted(it.get_prev(datetime) for _ in range(count))


def describe(conn: Conn, job: registry.Job, now: datetime, count: int = 5) -> dict[str, Any]:
    """A job's policies, state, last and next ``count`` occurrences, and pending catch-ups."""
    state = schedule_state.state(conn, job)
    history = schedule_state.changes(conn, [job], now)[job.name]
    last = _occurrence_runs(conn, job, _previous(state.cron, now, count))
    found = watchdog.check(conn, now, jobs=(job,))
    return {
        "job": job.name,
        "description": job.description,
        "cron": job.cron,
        "policy": {
            "overlap": job.overlap.value,
            "catchup_window": str(job.catchup_window),
            "catchup_latest_only": job.catchup_latest_only,
            "dependency_deadline": str(job.dependency_deadline),
            "pause_after_failures": job.pause_after_failures,
            "depends_on": list(job.depends_on),
        },
        "state": state.to_dict(now),
        "changes": [
            {
                "action": c.action,
                "at": c.changed_at,
                "by": c.changed_by,
                "note": c.note,
                "until": c.paused_until,
                "cron": c.cron,
                "catch_up": c.catch_up,
            }
            for c in history[-count:]
        ],
        "last": [
            {
                "as_of": r["as_of"],
                "succeeded": r["succeeded"],
                "runs": list(r["statuses"]),
                "trigger": r["last_trigger"],
            }
            for r in last
        ],
        "next": [] if state.is_paused(now) and state.paused_until is None else next_fire_times(state.cron, now, count),
        "pending_catch_up": [d.as_of for d in found.to_catch_up],
        "missed": [d.as_of for d in found.missed],
    }


# --------------------------------------------------------------------------- backfill


@dataclass
class Backfill:
    job: registry.Job
    start: datetime
    end: datetime
    occurrences: list[datetime]
    already: list[datetime]
    force: bool
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def todo(self) -> list[datetime]:
        return self.occurrences if self.force else [at for at in self.occurrences if at not in self.already]

    def counts(self) -> dict[str, int]:
        statuses = [r["status"] for r in self.results]
        return {
            "occurrences": len(self.occurrences),
            "already_succeeded": len(self.already),
            "planned": len(self.todo),
            "ran": len(self.results),
            "succeeded": statuses.count("succeeded"),
            "failed": statuses.count("failed"),
            "skipped": statuses.count("skipped"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job.name,
            "from": self.start,
            "to": self.end,
            "force": self.force,
            "planned": self.todo,
            "summary": self.counts(),
            "results": self.results,
        }


def plan_backfill(
    conn: Conn | None, job: registry.Job, start: datetime, end: datetime, *, force: bool = False
) -> Backfill:
    """The occurrences of ``job`` in ``[start, end]`` on the schedule in force at each time (pauses
    ignored: a backfill is asked for); without a database (``conn`` None) none is known to have succeeded."""
    if end < start:
        raise ValidationError(f"--to {iso(end)} is before --from {iso(start)}")
    if end > local.utcnow():
        raise ValidationError(f"--to {iso(end)} is in the future; a job runs only for an occurrence that has come")
    if end - start > MAX_RANGE:
        raise ValidationError(f"a backfill covers at most {MAX_RANGE.days} days; split the range")
    reschedules: list[schedule_state.Change] = []
    if conn is not None:
        history = schedule_state.changes(conn, [job], end)[job.name]
        reschedules = [c for c in history if c.action == schedule_state.Action.RESCHEDULE]
    found = schedule_state.expected_occurrences(job, reschedules, start, end + timedelta(microseconds=1))
    already = []
    if conn is not None and found:
        already = [r["as_of"] for r in _occurrence_runs(conn, job, found) if r["succeeded"]]
    return Backfill(job, start, end, found, already, force)


def run_backfill(
    plan: Backfill, invoke: Callable[[dict[str, Any]], dict[str, Any]], on_result: Callable[[dict[str, Any]], None]
) -> None:
    """Run each planned occurrence in order through ``invoke`` (the handler here, or the function on AWS)."""
    for at in plan.todo:
        event = local.manual_event(as_of=at, force=plan.force)
        try:
            result = invoke(event)
            entry = {"as_of": at, "status": result.get("status", "succeeded"), "reason": result.get("reason")}
        except JobsError as exc:  # logged by the runner; the backfill goes on with the next occurrence
            entry = {"as_of": at, "status": "failed", "reason": str(exc)}
        plan.results.append(entry)
        on_result(entry)
