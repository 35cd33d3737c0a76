"""The runner owns the run: one protocol for Lambda, the CLI and the local scheduler. It claims
the run (:mod:`shared.claim`), does the work in the job's own transaction and records the
outcome. The protocol: README, "The run: exactly once per occurrence"; overlaps, pauses,
dependency waits and catch-up: docs/operate.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import errors as pg_errors
from psycopg import sql

from shared import db, execution, registry, schedule_state
from shared.claim import Claim, claim_run
from shared.db import Conn, is_usable, transaction
from shared.errors import DependencyNotMet, JobFailed, JobsError, translate
from shared.events import RunRequest, Trigger, iso
from shared.naming import JOB_DIMENSION, METRIC_AUTO_PAUSED
from shared.observability import logger, metrics, tracer
from shared.outcome import RunResult, Status, make_result, observe
from shared.queries import load

Q = load("runner")
_SUCCESS_INDEX = "cron_job_logs_one_success_per_occurrence"


def now() -> datetime:
    """The wall clock that pauses and dependency deadlines are judged by (the soak simulates it)."""
    return datetime.now(UTC)


class _Abandoned(Exception):
    """Our running row was closed by another run while we worked (we passed the deadline)."""


def run(
    request: RunRequest,
    *,
    request_id: str | None = None,
    budget_s: float | None = None,
    get_connection: Callable[[], Conn] = db.get_connection,
) -> RunResult:
    """Run one occurrence of a job. Returns the result; raises JobsError after logging a failure.

    ``budget_s`` caps the job's time budget (the Lambda passes its remaining time).
    """
    job = request.job
    started = time.monotonic()
    budget = float(job.timeout_s) if budget_s is None else max(1.0, min(float(job.timeout_s), budget_s))
    deadline = started + budget
    logger.append_keys(job=job.name, as_of=iso(request.as_of), trigger=request.trigger.value)
    tracer.put_annotation(key="job", value=job.name)
    metrics.add_dimension(name=JOB_DIMENSION, value=job.name)

    try:
        conn, claim = claim_run(get_connection, request, request_id, now())
    except JobsError as exc:
        # Failed before it started (secret, connection, authentication): still a failed run
        # for the logs, metrics and alarms, though it has no cron_job_logs row.
        logger.append_keys(run_id=None)
        observe(make_result(request, Status.FAILED, None, started, reason=str(exc)))
        raise
    logger.append_keys(run_id=claim.log_id)
    if claim.skipped_reason is not None:
        result = make_result(request, Status.SKIPPED, claim.log_id, started, reason=claim.skipped_reason)
        observe(result)
        return result
    try:
        return _work(request, conn, claim, started, deadline, get_connection)
    finally:
        if not request.dry_run:
            _run_pending(request, deadline if budget_s is not None else None, request_id, get_connection)


def _work(
    request: RunRequest,
    conn: Conn,
    claim: Claim,
    started: float,
    deadline: float,
    get_connection: Callable[[], Conn],
) -> RunResult:
    job = request.job

    logger.info("run started")
    try:
        _check_dependencies(conn, job, request.as_of, deadline)

        def finish(summary: execution.Summary) -> None:
            _check_summary(job, summary)
            if request.dry_run:
                return  # the transaction rolls back; the row is closed below
            row = conn.execute(Q["succeed"], {"id": claim.log_id, "summary": json.dumps(summary)}).fetchone()
            if row is None:
                raise _Abandoned()

        summary = execution.execute(conn, job, request.as_of, deadline=deadline, dry_run=request.dry_run, finish=finish)
        if request.dry_run:
            _close(get_connection, claim.log_id, Status.SUCCEEDED, None, {"summary": summary})
    except pg_errors.UniqueViolation as exc:
        if getattr(exc.diag, "constraint_name", None) != _SUCCESS_INDEX:
            return _fail(get_connection, request, claim.log_id, started, exc)
        reason = (
            "duplicate: this occurrence succeeded in another run while this one worked; this run's work was rolled back"
        )
        _close(get_connection, claim.log_id, Status.SKIPPED, reason, {})
        result = make_result(request, Status.SKIPPED, claim.log_id, started, reason=reason)
        observe(result)
        return result
    except _Abandoned:
        exc2 = JobFailed(
            f"{job.name}: run #{claim.log_id} passed its deadline and was closed as abandoned "
            "by another run; its work was rolled back"
        )
        return _fail(get_connection, request, claim.log_id, started, exc2)
    except Exception as exc:
        error = translate(exc, what=f"running {job.name}")
        if isinstance(error, DependencyNotMet) and _may_wait(request):
            return _wait_for_dependency(get_connection, request, claim.log_id, started, error)
        return _fail(get_connection, request, claim.log_id, started, error)

    result = make_result(request, Status.SUCCEEDED, claim.log_id, started, summary=summary)
    observe(result)
    return result


def _run_pending(
    request: RunRequest, deadline: float | None, request_id: str | None, get_connection: Callable[[], Conn]
) -> None:
    """buffer_one: run the occurrence that waited for this run, if the time left allows a whole run.

    ``deadline`` is the Lambda's (None locally: no limit). Without the time, it keeps waiting
    and the watchdog's catch-up runs it. Never raises: this run's own outcome stands.
    """
    job = request.job
    if job.overlap is not registry.Overlap.BUFFER_ONE:
        return
    if deadline is not None and execution.remaining_ms(deadline) < job.timeout_s * 1000:
        return
    try:
        conn = get_connection()
        with transaction(conn, timeout_ms=10_000):
            pending = schedule_state.take_pending(conn, job)
        if pending is None or pending == request.as_of:  # this run was the waiting occurrence's
            return
        budget = None if deadline is None else execution.remaining_ms(deadline) / 1000
        logger.info("running the occurrence that waited", extra={"pending_as_of": iso(pending)})
        trigger = Trigger.CATCHUP if request.trigger is Trigger.MANUAL else request.trigger
        waited = RunRequest(job=job, as_of=pending, trigger=trigger)
        run(waited, request_id=request_id, budget_s=budget, get_connection=get_connection)
    except Exception as exc:  # a failure of the waiting run is recorded by its own run
        logger.warning("the waiting occurrence did not succeed", extra={"error": str(translate(exc, what="it"))})


def _may_wait(request: RunRequest) -> bool:
    """Whether a run whose dependency is not met waits (recorded skipped) instead of failing."""
    if request.trigger is Trigger.MANUAL or request.dry_run:
        return False
    return now() < request.as_of + request.job.dependency_deadline


def _check_dependencies(conn: Conn, job: registry.Job, as_of: datetime, deadline: float) -> None:
    for name in job.depends_on:
        dep = registry.get(name)
        assert dep.completion_check is not None  # guaranteed by the registry's validation
        query = sql.SQL("SELECT {}(%(as_of)s) AS done").format(sql.Identifier(dep.completion_check))
        with transaction(conn, timeout_ms=execution.remaining_ms(deadline)):
            done = conn.execute(query, {"as_of": as_of}).fetchone()
        if not (done and done["done"]):
            day = (as_of.astimezone(UTC) - timedelta(days=1)).date().isoformat()
            midnight = as_of.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            raise DependencyNotMet(
                f"{job.name} needs {dep.name} for {day}, which has not succeeded yet; "
                f"run {dep.name} for as_of {iso(midnight)} first (a retry of this run then succeeds)"
            )


def _check_summary(job: registry.Job, summary: execution.Summary) -> None:
    missing = [k for k in job.summary_keys if not isinstance(summary.get(k), int)]
    if missing:
        raise JobFailed(f"{job.name} returned a summary without integer {', '.join(missing)}: {summary}")


def _close(
    get_connection: Callable[[], Conn], log_id: int, status: Status, error_message: str | None, metadata: dict[str, Any]
) -> None:
    params = {"id": log_id, "status": status.value, "error_message": error_message, "metadata": json.dumps(metadata)}
    for attempt in range(2):
        conn = get_connection() if attempt == 0 else db.reconnect()
        try:
            if not is_usable(conn):
                continue
            with transaction(conn, timeout_ms=10_000):
                conn.execute(Q["close"], params)
            return
        except Exception as exc:  # the database may be down: the row will be reaped later
            logger.warning("could not record the run's outcome", extra={"error": str(translate(exc, what="closing"))})
    logger.error("the run's outcome is not in cron_job_logs; its row will be closed as abandoned after its deadline")


def _wait_for_dependency(
    get_connection: Callable[[], Conn], request: RunRequest, log_id: int, started: float, error: JobsError
) -> RunResult:
    until = request.as_of + request.job.dependency_deadline
    reason = (
        f"waiting for a dependency until {iso(until)}: {error} "
        "(retried by the watchdog's catch-up; a failure only after that time)"
    )
    _close(get_connection, log_id, Status.SKIPPED, reason, {"deferred": "dependency", "wait_until": iso(until)})
    result = make_result(request, Status.SKIPPED, log_id, started, reason=reason)
    observe(result)
    return result


def _fail(
    get_connection: Callable[[], Conn], request: RunRequest, log_id: int, started: float, exc: BaseException
) -> RunResult:
    error = translate(exc, what=f"running {request.job.name}")
    metadata: dict[str, Any] = {"error_type": error.kind, "sqlstate": error.sqlstate}
    if isinstance(exc, execution.BatchesLeft):
        metadata["deferred"] = "batches"  # the occurrence is still to finish: the watchdog catches it up
    _close(get_connection, log_id, Status.FAILED, str(error), metadata)
    result = make_result(request, Status.FAILED, log_id, started, reason=str(error))
    observe(result)
    if not request.dry_run:
        _pause_after_failures(get_connection, request.job)
    raise error from None


def _pause_after_failures(get_connection: Callable[[], Conn], job: registry.Job) -> None:
    """After ``pause_after_failures`` failed occurrences in a row, pause the job and alarm once."""
    try:
        conn = get_connection()
        if not is_usable(conn):
            return
        failed = schedule_state.failed_occurrences(conn, job)
        if failed < job.pause_after_failures:
            return
        note = f"paused after {failed} failed occurrences in a row; fix the cause, then `jobctl resume {job.name}`"
        if schedule_state.auto_pause(conn, job, note=note):
            logger.error("job paused after repeated failures", extra={"failed_occurrences": failed})
            metrics.add_metric(name=METRIC_AUTO_PAUSED, unit="Count", value=1)
    except Exception as exc:  # the database may be the cause of the failures: the alarms still see them
        logger.warning("could not check the failure count", extra={"error": str(translate(exc, what="checking"))})


__all__ = ["JobsError", "RunResult", "Status", "run"]
