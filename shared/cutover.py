"""Moving the schedules off pg_cron, and undoing it (``jobctl cutover [--undo]``): which pg_cron
jobs run a registry job, unscheduling them in one transaction with a record for the undo, and
who runs each occurrence across the switch (:func:`pg_cron_owns`). Explained in
docs/moving-from-pg-cron.md, "What the cutover moves" and "Why no occurrence is lost or run
twice" (the quiet window is :data:`QUIET_FROM_S`..:data:`QUIET_UNTIL_S` past a minute).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared import registry
from shared.db import Conn, transaction
from shared.queries import load

Q = load("cutover")
#: An arbitrary constant: the advisory lock key that serialises cutovers and undos.
LOCK_KEY = 7_341_002_020
#: pg_cron starts a minute's jobs within a few seconds of its boundary, even on a busy server;
#: the cutover commits in milliseconds. Acting in this window keeps both off the boundary.
QUIET_FROM_S = 15.0
QUIET_UNTIL_S = 50.0

# select [* from] [public.]fn() [;]  -- any case and spacing, identifiers optionally quoted
_CALL = re.compile(
    r"""^\s*select\s+(?:\*\s+from\s+)?(?:"?public"?\s*\.\s*)?"?(?P<fn>[a-z_][a-z0-9_]*)"?\s*\(\s*\)\s*;?\s*$""",
    re.IGNORECASE,
)
_BY_NAME = {key: job.name for job in registry.JOBS for key in (job.name, job.sql_function)}
_BY_FUNCTION = {job.sql_function: job.name for job in registry.JOBS}


def registry_job(jobname: str | None, command: str | None) -> str | None:
    """The registry job a pg_cron job runs (by its name or its command), or None."""
    if jobname and (name := _BY_NAME.get(jobname.strip().lower())):
        return name
    match = _CALL.match(command or "")
    return _BY_FUNCTION.get(match["fn"].lower()) if match else None


@dataclass(frozen=True)
class CronJob:
    """A row of ``cron.job`` that runs a registry job."""

    job: str
    jobid: int
    jobname: str | None
    schedule: str
    command: str
    database: str
    username: str
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "jobid": self.jobid,
            "jobname": self.jobname,
            "schedule": self.schedule,
            "command": self.command,
            "database": self.database,
            "username": self.username,
            "active": self.active,
        }


def pg_cron_installed(conn: Conn) -> bool:
    row = conn.execute(Q["pg_cron_installed"]).fetchone()
    return bool(row and row["installed"])


def _matching(rows: Iterable[dict[str, Any]]) -> list[CronJob]:
    out = []
    for row in rows:
        job = registry_job(row["jobname"], row["command"])
        if job is not None:
            out.append(CronJob(job=job, **{k: row[k] for k in CronJob.__dataclass_fields__ if k != "job"}))
    return out


def scheduled(conn: Conn) -> list[CronJob]:
    """The pg_cron jobs of this database that run a registry job (empty without pg_cron).

    Read as the current user: a non-superuser sees only the jobs they scheduled.
    """
    if not pg_cron_installed(conn):
        return []
    return _matching(conn.execute(Q["cron_jobs"]).fetchall())


def other_jobs(conn: Conn) -> list[dict[str, Any]]:
    """The pg_cron jobs of this database that run no registry job: the cutover leaves them alone."""
    if not pg_cron_installed(conn):
        return []
    return [r for r in conn.execute(Q["cron_jobs"]).fetchall() if registry_job(r["jobname"], r["command"]) is None]


@dataclass(frozen=True)
class Result:
    """What a cutover or an undo did (or, dry, would do)."""

    action: str  # "cutover" or "undo"
    pg_cron: bool
    dry_run: bool
    jobs: list[dict[str, Any]] = field(default_factory=list)
    left_alone: list[dict[str, Any]] = field(default_factory=list)

    @property
    def message(self) -> str:
        if not self.pg_cron and self.action == "cutover":
            return "pg_cron is not installed in this database: nothing to cut over"
        verb = {"cutover": "unscheduled", "undo": "restored"}[self.action]
        if not self.jobs:
            return {
                "cutover": "no pg_cron job runs a registry job: nothing to cut over",
                "undo": "no cutover to undo",
            }[self.action]
        would = "would be " if self.dry_run else ""
        return f"{len(self.jobs)} pg_cron job(s) {would}{verb}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "pg_cron_installed": self.pg_cron,
            "dry_run": self.dry_run,
            "message": self.message,
            "jobs": self.jobs,
            "left_alone": self.left_alone,
        }


def wait_for_quiet(second: float) -> float:
    """Seconds to wait, ``second`` seconds past a minute, to be between QUIET_FROM_S and QUIET_UNTIL_S."""
    if second < QUIET_FROM_S:
        return QUIET_FROM_S - second
    if second > QUIET_UNTIL_S:
        return 60.0 - second + QUIET_FROM_S
    return 0.0


def _quiet_moment(conn: Conn, sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait until the server clock is in the quiet part of its minute."""
    row = conn.execute(Q["seconds_into_minute"]).fetchone()
    assert row is not None
    if wait := wait_for_quiet(float(row["s"])):
        sleep(wait)


def cut_over(conn: Conn, *, dry_run: bool = False) -> Result:
    """Unschedule the pg_cron jobs that run a registry job, recording each; idempotent.

    One transaction: every matching job is unscheduled and recorded, or none is. A dry run
    does the same and rolls it back.
    """
    if not pg_cron_installed(conn):
        return Result("cutover", pg_cron=False, dry_run=dry_run)
    if not dry_run and scheduled(conn):
        _quiet_moment(conn)
    with transaction(conn, rollback=dry_run):
        conn.execute(Q["lock"], {"key": LOCK_KEY})
        rows = conn.execute(Q["cron_jobs"]).fetchall()
        matched = _matching(rows)
        ids = []
        for cron_job in matched:
            row = conn.execute(Q["record"], {"registry_job": cron_job.job, **cron_job.to_dict()}).fetchone()
            assert row is not None
            ids.append(row["id"])
            conn.execute(Q["unschedule"], {"jobid": cron_job.jobid})
        stamped = conn.execute(Q["stamp_cut"], {"ids": ids}).fetchall() if ids else []
    left = [dict(r) for r in rows if registry_job(r["jobname"], r["command"]) is None]
    return Result("cutover", pg_cron=True, dry_run=dry_run, jobs=[dict(r) for r in stamped], left_alone=left)


def undo(conn: Conn, *, dry_run: bool = False) -> Result:
    """Schedule again, exactly as they were, the pg_cron jobs the cutovers unscheduled; idempotent."""
    if not pg_cron_installed(conn):
        return Result("undo", pg_cron=False, dry_run=dry_run)
    if not dry_run and conn.execute(Q["open_records"]).fetchone():
        _quiet_moment(conn)
    with transaction(conn, rollback=dry_run):
        conn.execute(Q["lock"], {"key": LOCK_KEY})
        records = conn.execute(Q["open_records"]).fetchall()
        jobids = []
        for rec in records:
            if rec["jobname"] is not None:
                row = conn.execute(Q["schedule_named"], rec).fetchone()
            else:
                row = conn.execute(Q["schedule_unnamed"], rec).fetchone()
                assert row is not None
                conn.execute(Q["alter_unnamed"], {**rec, "jobid": row["jobid"]})
            assert row is not None
            jobids.append(row["jobid"])
        restored = {}
        if records:
            stamped = conn.execute(Q["stamp_restored"], {"ids": [r["id"] for r in records], "jobids": jobids})
            restored = {r["id"]: r for r in stamped.fetchall()}
    jobs = [{**dict(rec), **dict(restored.get(rec["id"], {}))} for rec in records]
    return Result("undo", pg_cron=True, dry_run=dry_run, jobs=jobs)


def records(conn: Conn) -> list[dict[str, Any]]:
    """Every cutover record, oldest first (empty before the jobs layer is migrated)."""
    if conn.execute("SELECT to_regclass('pg_cron_cutover') IS NOT NULL AS present").fetchone()["present"]:  # type: ignore[index]
        return list(conn.execute(Q["records"]).fetchall())
    return []


@dataclass(frozen=True)
class Handover:
    """Who runs each occurrence: pg_cron (before a job's cutover, or while it schedules it) or the runner."""

    live: frozenset[str]
    """Registry jobs an active pg_cron job runs now."""
    windows: dict[str, tuple[tuple[datetime, datetime | None], ...]]
    """Per job, the ``[cut_at, restored_at)`` spans in which the runner owns the occurrences."""

    @classmethod
    def load(cls, conn: Conn, jobs: Sequence[str]) -> Handover:
        live: set[str] = set()
        windows: dict[str, list[tuple[datetime, datetime | None]]] = {}
        for row in conn.execute(Q["handover"], {"jobs": list(jobs)}).fetchall():
            if row["kind"] == "cron":
                job = registry_job(row["jobname"], row["command"])
                if job is not None and row["active"]:
                    live.add(job)
            else:
                windows.setdefault(row["jobname"], []).append((row["cut_at"], row["restored_at"]))
        return cls(frozenset(live), {k: tuple(sorted(v, key=lambda w: w[0])) for k, v in windows.items()})

    def pg_cron_owns(self, job: str, as_of: datetime) -> bool:
        """True when pg_cron runs (or ran) ``job``'s occurrence at ``as_of``, so the runner must not."""
        spans = self.windows.get(job, ())
        if any(cut <= as_of and (restored is None or as_of < restored) for cut, restored in spans):
            return False  # cut over at that time: the runner's
        if any(as_of < cut for cut, _ in spans):
            return True  # before a cutover: pg_cron ran it
        return job in self.live


def pg_cron_owns(conn: Conn, job: str, as_of: datetime) -> bool:
    """Whether pg_cron runs (or ran) ``job``'s occurrence at ``as_of``; see :class:`Handover`."""
    return Handover.load(conn, [job]).pg_cron_owns(job, as_of)


def both_schedule(conn: Conn) -> list[str]:
    """Registry jobs that an active pg_cron job still runs: with deployed rules, scheduled twice."""
    return sorted({c.job for c in scheduled(conn) if c.active})
