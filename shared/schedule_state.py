"""Job state in the database: pause, resume, reschedule, the buffered occurrence and the pause
after repeated failures. ``job_schedule_state`` holds each job's state (no row: active, on the
registry's cron), ``job_schedule_changes`` every change with who, when and why; the runner,
the watchdog, the local scheduler and jobctl read them (docs/operate.md, "Job state, catch-up
and backfill").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.cron import next_fire_times, parse
from shared.db import Conn, transaction
from shared.queries import load
from shared.registry import JOBS, Job

Q = load("schedule_state")


class Action:
    PAUSE = "pause"
    RESUME = "resume"
    RESCHEDULE = "reschedule"
    AUTO_PAUSE = "auto-pause"


@dataclass(frozen=True)
class Change:
    """One row of ``job_schedule_changes``."""

    job_name: str
    action: str
    changed_at: datetime
    changed_by: str
    note: str | None = None
    paused_until: datetime | None = None
    cron: str | None = None
    catch_up: bool = False


@dataclass(frozen=True)
class JobState:
    """A job's current state (defaults: active, on the registry's cron)."""

    job: Job
    paused: bool = False
    paused_until: datetime | None = None
    cron_override: str | None = None
    pending_as_of: datetime | None = None
    changed_at: datetime | None = None
    changed_by: str | None = None
    note: str | None = None

    @property
    def cron(self) -> str:
        return self.cron_override or self.job.cron

    def is_paused(self, now: datetime) -> bool:
        return self.paused and (self.paused_until is None or now < self.paused_until)

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "paused": self.is_paused(now),
            "paused_until": self.paused_until,
            "cron": self.cron,
            "rescheduled": self.cron_override is not None and self.cron_override != self.job.cron,
            "pending_as_of": self.pending_as_of,
            "changed_at": self.changed_at,
            "changed_by": self.changed_by,
            "note": self.note,
        }


def states(conn: Conn, jobs: Iterable[Job] = JOBS) -> dict[str, JobState]:
    """Every given job's state, by name."""
    jobs = tuple(jobs)
    rows = {r["job_name"]: r for r in conn.execute(Q["states"], {"job_names": [j.name for j in jobs]}).fetchall()}
    out = {}
    for job in jobs:
        r = rows.get(job.name)
        out[job.name] = (
            JobState(job)
            if r is None
            else JobState(
                job,
                paused=r["paused"],
                paused_until=r["paused_until"],
                cron_override=r["cron"],
                pending_as_of=r["pending_as_of"],
                changed_at=r["changed_at"],
                changed_by=r["changed_by"],
                note=r["note"],
            )
        )
    return out


def state(conn: Conn, job: Job) -> JobState:
    return states(conn, (job,))[job.name]


def changes(conn: Conn, jobs: Iterable[Job], until: datetime) -> dict[str, list[Change]]:
    """Every change of the given jobs made up to ``until``, oldest first, by job name."""
    names = [j.name for j in jobs]
    out: dict[str, list[Change]] = {name: [] for name in names}
    for r in conn.execute(Q["changes"], {"job_names": names, "until": until}).fetchall():
        out[r["job_name"]].append(Change(**{k: r[k] for k in Change.__dataclass_fields__}))
    return out


def _record(conn: Conn, change: Change) -> None:
    conn.execute(
        Q["record_change"],
        {
            "job_name": change.job_name,
            "action": change.action,
            "at": change.changed_at,
            "by": change.changed_by,
            "note": change.note,
            "paused_until": change.paused_until,
            "cron": change.cron,
            "catch_up": change.catch_up,
        },
    )


def pause(
    conn: Conn, job: Job, *, by: str, note: str | None = None, until: datetime | None = None, at: datetime | None = None
) -> JobState:
    """Pause ``job`` (until resumed, or until ``until``), recording who, when and why."""
    at = at or datetime.now(UTC)
    with transaction(conn):
        params = {"job_name": job.name, "paused": True, "paused_until": until, "at": at, "by": by, "note": note}
        conn.execute(Q["set_paused"], params)
        _record(conn, Change(job.name, Action.PAUSE, at, by, note, paused_until=until))
    return state(conn, job)


def resume(
    conn: Conn, job: Job, *, by: str, note: str | None = None, catch_up: bool = False, at: datetime | None = None
) -> JobState:
    """Resume ``job``; with ``catch_up`` the occurrences it missed while paused are expected again."""
    at = at or datetime.now(UTC)
    with transaction(conn):
        params = {"job_name": job.name, "paused": False, "paused_until": None, "at": at, "by": by, "note": note}
        conn.execute(Q["set_paused"], params)
        _record(conn, Change(job.name, Action.RESUME, at, by, note, catch_up=catch_up))
    return state(conn, job)


def reschedule(
    conn: Conn, job: Job, cron: str, *, by: str, note: str | None = None, at: datetime | None = None
) -> JobState:
    """Record ``job``'s new schedule (5-field cron, validated); the registry's cron clears it."""
    text = parse(cron).text  # raises CronError before anything is written
    at = at or datetime.now(UTC)
    override = None if text == parse(job.cron).text else text
    with transaction(conn):
        conn.execute(Q["set_cron"], {"job_name": job.name, "cron": override, "at": at, "by": by, "note": note})
        _record(conn, Change(job.name, Action.RESCHEDULE, at, by, note, cron=text))
    return state(conn, job)


def auto_pause(conn: Conn, job: Job, *, note: str, at: datetime | None = None) -> bool:
    """Pause ``job`` after repeated failures; False when it was already paused (no second alarm)."""
    at = at or datetime.now(UTC)
    with transaction(conn):
        row = conn.execute(Q["auto_pause"], {"job_name": job.name, "at": at, "by": "runner", "note": note}).fetchone()
        if row is None:
            return False
        _record(conn, Change(job.name, Action.AUTO_PAUSE, at, "runner", note))
    return True


def failed_occurrences(conn: Conn, job: Job) -> int:
    """How many of the job's latest occurrences failed in a row (since its last resume)."""
    row = conn.execute(Q["failure_streak"], {"job_name": job.name}).fetchone()
    return int(row["failed_occurrences"]) if row else 0


def buffer(conn: Conn, job: Job, as_of: datetime) -> bool:
    """Make ``as_of`` the job's waiting occurrence; False when another one already waits."""
    return conn.execute(Q["buffer"], {"job_name": job.name, "as_of": as_of}).fetchone() is not None


def take_pending(conn: Conn, job: Job) -> datetime | None:
    """Take the job's waiting occurrence, if any (only one caller gets it)."""
    row = conn.execute(Q["take_pending"], {"job_name": job.name}).fetchone()
    return None if row is None else row["pending_as_of"]


# --------------------------------------------------------------------------- expected occurrences


def fire_times(cron: str, start: datetime, end: datetime) -> list[datetime]:
    """The fire times of ``cron`` in ``[start, end)``."""
    found: list[datetime] = []
    cursor = start - timedelta(microseconds=1)
    while cursor < end:
        batch = next_fire_times(cron, cursor, count=64)
        found.extend(t for t in batch if t < end)
        cursor = batch[-1]
    return found


def expected_occurrences(job: Job, history: list[Change], start: datetime, end: datetime) -> list[datetime]:
    """The occurrences of ``job`` due in ``[start, end)``, on the schedule in force at each time.

    ``history`` is the job's changes, oldest first. An occurrence at or after a pause and
    before its resume (or its ``until``) is not due, unless that resume asked to catch up.
    """
    # Walk the changes, cutting time into spans that each have one cron and one pause state.
    spans: list[tuple[datetime, datetime | None, str, bool]] = []  # (from, to, cron, paused)
    cron, paused, paused_until = job.cron, False, None
    since = datetime.min.replace(tzinfo=UTC)
    pause_spans: list[int] = []  # indexes of the spans of the current pause

    def close(at: datetime) -> None:
        nonlocal since
        if paused and paused_until is not None and paused_until < at:
            if since < paused_until:
                spans.append((since, paused_until, cron, True))
                pause_spans.append(len(spans) - 1)
            spans.append((max(since, paused_until), at, cron, False))
        elif since < at:
            spans.append((since, at, cron, paused))
            if paused:
                pause_spans.append(len(spans) - 1)
        since = at

    for change in history:
        close(change.changed_at)
        if change.action in (Action.PAUSE, Action.AUTO_PAUSE):
            if not paused:
                pause_spans.clear()
            paused, paused_until = True, change.paused_until
        elif change.action == Action.RESUME:
            if change.catch_up:
                for i in pause_spans:
                    spans[i] = (*spans[i][:3], False)
            pause_spans.clear()
            paused, paused_until = False, None
        elif change.action == Action.RESCHEDULE and change.cron:
            cron = change.cron
    close(end)
    due: list[datetime] = []
    for span_from, span_to, span_cron, span_paused in spans:
        lo, hi = max(span_from, start), min(span_to or end, end)
        if not span_paused and lo < hi:
            due.extend(fire_times(span_cron, lo, hi))
    return due
