"""Missed-run detection: did every job run when its schedule said it should have?

Neither pg_cron nor EventBridge says when an occurrence never ran (a disabled rule, a
deleted permission, a throttled or undeliverable event, a function that crashed before
it wrote its log row). The watchdog Lambda, scheduled every 15 minutes, asks the run log:
for each registry job, the latest occurrence old enough that its run must have started
(the grace period) should have a ``cron_job_logs`` row. It emits ``MissedRuns`` = 1 or 0
per job, and a heartbeat so that a watchdog which stops reporting alarms too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import psycopg

from shared import cutover, queries
from shared.cron import previous_fire_time
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


def grace(job: Job) -> timedelta:
    """How long after an occurrence its run row must exist."""
    return timedelta(seconds=job.lambda_timeout_s) + START_GRACE


def expected_occurrences(
    now: datetime, since: datetime | None, jobs: Iterable[Job] = JOBS
) -> dict[str, datetime | None]:
    """Per job, the latest occurrence that must have a run by ``now`` (None: none expected yet)."""
    expected: dict[str, datetime | None] = {}
    for job in jobs:
        occurrence = previous_fire_time(job.cron, now - grace(job))
        if since is not None and occurrence < since + DEPLOY_SLACK:
            expected[job.name] = None
        else:
            expected[job.name] = occurrence
    return expected


def without_pg_cron(conn: psycopg.Connection[Any], expected: dict[str, datetime | None]) -> dict[str, datetime | None]:
    """``expected`` less the occurrences pg_cron ran (before the job's cutover) or still runs.

    pg_cron's runs log under the guide's function name at the time they started, not at
    the occurrence, so they cannot be matched; and they are not the runner's to miss.
    """
    handover = cutover.Handover.load(conn, list(expected))
    return {name: None if at is not None and handover.pg_cron_owns(name, at) else at for name, at in expected.items()}


def missed_runs(conn: psycopg.Connection[Any], now: datetime) -> dict[str, datetime | None]:
    """Per registry job, the occurrence that left no run row by ``now``, or None when none did.

    Pure but for reading the database: nothing is written.
    """
    sql = queries.load("watchdog")
    row = conn.execute(sql["monitoring_since"]).fetchone()
    since = row["since"] if row else None
    expected = without_pg_cron(conn, expected_occurrences(now, since))
    due = {name: at for name, at in expected.items() if at is not None}
    logged = conn.execute(
        sql["logged_occurrences"],
        {"job_names": list(due), "as_ofs": list(due.values())},
    ).fetchall()
    ran = {(r["job_name"], r["as_of"]) for r in logged}
    return {name: (at if at is not None and (name, at) not in ran else None) for name, at in expected.items()}


def check(now: datetime) -> dict[str, datetime | None]:
    """:func:`missed_runs` on the process's connection, reconnecting once if it went stale."""
    from shared.db import get_connection, reconnect

    try:
        return missed_runs(get_connection(), now)
    except psycopg.OperationalError:
        return missed_runs(reconnect(), now)


def emit_metrics(missed: dict[str, datetime | None], namespace: str) -> None:
    """``MissedRuns`` per job (dimensions service, job) and the heartbeat (service)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    for name, occurrence in missed.items():
        with single_metric(
            name=METRIC_MISSED,
            unit=MetricUnit.Count,
            value=0 if occurrence is None else 1,
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
