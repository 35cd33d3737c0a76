"""Missed-run detection: did every occurrence due, on the schedule in force and outside pauses,
leave a run that settles it (docs/operate.md, "Catch-up (the watchdog)")? Those inside the
job's catch-up window are caught up (``shared.catchup``); older ones are missed, counted in
``MissedRuns``. Settled: ``occurrence_status`` in ``shared/sql/queries/watchdog.sql``;
occurrences pg_cron owns are not expected. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import cutover, queries, schedule_state
from shared.db import Conn
from shared.events import iso
from shared.naming import JOB_DIMENSION, METRIC_MISSED, SERVICE
from shared.registry import JOBS, Job

#: Emitted once per successful check (dimension ``service`` only); its absence alarms.
METRIC_HEARTBEAT = "WatchdogChecks"
#: Beyond the Lambda timeout: time for EventBridge delivery and the async queue to start
#: the run. A run writes its row when it starts, so retries need no extra allowance.
START_GRACE = timedelta(minutes=10)
#: Occurrences this soon after the first migration may fall between the migration and the
#: creation of the rules in the same first deploy: not expected either.
DEPLOY_SLACK = timedelta(minutes=10)
#: How far back misses (outside the catch-up window) are still reported.
LOOKBACK = timedelta(days=35)


def grace(job: Job) -> timedelta:
    """How long after an occurrence its run row must exist."""
    return timedelta(seconds=job.lambda_timeout_s) + START_GRACE


@dataclass(frozen=True)
class Due:
    """An occurrence that was due and is not settled."""

    job: str
    as_of: datetime
    in_window: bool
    logged: int
    """How many rows it has (0: it never ran; more: only skips that left it to run, or an abandoned run)."""

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "as_of": iso(self.as_of), "in_window": self.in_window, "logged_rows": self.logged}


@dataclass
class Check:
    """What the watchdog found at ``now``."""

    now: datetime
    since: datetime | None
    jobs: tuple[Job, ...]
    due: list[Due] = field(default_factory=list)
    """Every unsettled occurrence, in time order then registry order."""
    paused: dict[str, str] = field(default_factory=dict)
    """Jobs paused now, with the note."""
    busy: dict[str, int] = field(default_factory=dict)
    """Jobs with a run in progress, with its run id."""

    @property
    def to_catch_up(self) -> list[Due]:
        return [d for d in self.due if d.in_window]

    @property
    def missed(self) -> list[Due]:
        return [d for d in self.due if not d.in_window]

    def missed_counts(self) -> dict[str, int]:
        """Per job, how many occurrences fell outside the catch-up window unrun (the metric)."""
        counts = {job.name: 0 for job in self.jobs}
        for d in self.missed:
            counts[d.job] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": iso(self.now),
            "since": None if self.since is None else iso(self.since),
            "to_catch_up": [d.to_dict() for d in self.to_catch_up],
            "missed": [d.to_dict() for d in self.missed],
            "paused": self.paused,
            "running": self.busy,
        }


def monitoring_since(conn: Conn) -> datetime | None:
    row = conn.execute(queries.load("watchdog")["monitoring_since"]).fetchone()
    return row["since"] if row else None


def expected(job: Job, history: list[schedule_state.Change], now: datetime, since: datetime | None) -> list[datetime]:
    """The occurrences of ``job`` that must have a run by ``now`` and are still watched."""
    last = now - grace(job)
    lookback = job.catchup_window if job.catchup_latest_only else max(job.catchup_window, LOOKBACK)
    start = now - lookback
    if since is not None:
        start = max(start, since + DEPLOY_SLACK)
    if start > last:
        return []
    occurrences = schedule_state.expected_occurrences(job, history, start, last + timedelta(microseconds=1))
    return occurrences[-1:] if job.catchup_latest_only else occurrences


def check(conn: Conn, now: datetime, *, since: datetime | None = None, jobs: Iterable[Job] = JOBS) -> Check:
    """Every unsettled occurrence at ``now``; ``since`` overrides the first deploy's time."""
    jobs = tuple(jobs)
    now = now.astimezone(UTC)
    since = since if since is not None else monitoring_since(conn)
    history = schedule_state.changes(conn, jobs, now)
    handover = cutover.Handover.load(conn, [job.name for job in jobs])
    pairs = [
        (job, at)
        for job in jobs
        for at in expected(job, history[job.name], now, since)
        if not handover.pg_cron_owns(job.name, at)
    ]
    sql = queries.load("watchdog")
    rows = conn.execute(
        sql["occurrence_status"],
        {"job_names": [job.name for job, _ in pairs], "as_ofs": [at for _, at in pairs]},
    ).fetchall()
    status = {(r["job_name"], r["as_of"]): r for r in rows}
    order = {job.name: i for i, job in enumerate(jobs)}
    result = Check(now=now, since=since, jobs=jobs)
    for job, at in pairs:
        row = status[(job.name, at)]
        if not row["settled"]:
            result.due.append(Due(job.name, at, in_window=at >= now - job.catchup_window, logged=row["logged"]))
    result.due.sort(key=lambda d: (d.as_of, order[d.job]))
    for name, state in schedule_state.states(conn, jobs).items():
        if state.is_paused(now):
            result.paused[name] = state.note or ""
    names = set(order)
    result.busy = {r["job_name"]: r["id"] for r in conn.execute(sql["running"]).fetchall() if r["job_name"] in names}
    return result


def emit_metrics(missed: dict[str, int], namespace: str) -> None:
    """``MissedRuns`` per job (dimensions service, job: how many occurrences) and the heartbeat (service)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    for name, count in missed.items():
        with single_metric(
            name=METRIC_MISSED,
            unit=MetricUnit.Count,
            value=count,
            namespace=namespace,
            default_dimensions={"service": SERVICE, JOB_DIMENSION: name},
        ):
            pass
    with single_metric(
        name=METRIC_HEARTBEAT,
        unit=MetricUnit.Count,
        value=1,
        namespace=namespace,
        default_dimensions={"service": SERVICE},
    ):
        pass
