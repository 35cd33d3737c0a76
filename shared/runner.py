"""The runner owns the run: one protocol for Lambda, the CLI and the local scheduler.

1. **Claim** (one short transaction, committed before any work, so a crash is visible):
   close this job's ``running`` rows whose deadline passed (``failed``, "abandoned");
   for a scheduled occurrence, or a manual one naming an as_of, skip if it already
   succeeded; a paused job's scheduled, local and catch-up deliveries are skipped
   (``shared.schedule_state``); then take the job's single ``running`` slot, a partial
   unique index on ``cron_job_logs`` (not a session advisory lock, so it holds through a
   transaction-mode pooler). A delivery that finds the slot taken is recorded ``skipped``:
   a duplicate if the same occurrence holds it, an overlap otherwise. An overlap follows
   the job's policy (``registry.Overlap``): ``skip`` drops it (the next occurrence covers
   it), ``buffer_one`` keeps it waiting and the holder runs it when it finishes. Nothing
   is raised: a routine overlap makes no Lambda retry, no dead letter and no alarm. An
   occurrence left without a run (a buffered one whose holder died, a duplicate whose
   holder was abandoned) is run by the watchdog's catch-up (``shared.catchup``).
2. **Work**: dependencies are checked, then the job's SQL runs with a transaction-local
   statement and lock timeout equal to the time left in its budget. The ``succeeded``
   update is written in the job's own final transaction, so the work and its record
   commit together; the unique index on (job, as_of) for successes makes a duplicate
   that slipped past the claim roll its work back instead of doing it twice.
3. **Failure**: the row becomes ``failed`` with the message and SQLSTATE, and the error
   is re-raised so Lambda's retries, the dead-letter queue and the alarms see it; after
   ``pause_after_failures`` failed occurrences in a row the job pauses itself (one
   ``JobAutoPaused`` metric). A dependency not yet met is not a failure until the job's
   ``dependency_deadline``: the run is recorded ``skipped`` (waiting), and the watchdog's
   catch-up retries it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.types.json import Jsonb

from shared import cutover, db, execution, registry, schedule_state
from shared.db import Conn, is_usable, transaction
from shared.errors import DependencyNotMet, JobFailed, JobsError, translate
from shared.events import RunRequest, Trigger, iso
from shared.naming import (
    JOB_DIMENSION,
    METRIC_AUTO_PAUSED,
    METRIC_DURATION,
    METRIC_FAILED,
    METRIC_SKIPPED,
    METRIC_SUCCEEDED,
)
from shared.observability import logger, metrics, tracer
from shared.queries import load

Q = load("runner")
_SUCCESS_INDEX = "cron_job_logs_one_success_per_occurrence"


class Status(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


def now() -> datetime:
    """The wall clock that pauses and dependency deadlines are judged by (the soak simulates it)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunResult:
    """What a run returns to Lambda, the CLI and the scheduler."""

    job: str
    status: Status
    as_of: datetime
    trigger: Trigger
    log_id: int | None
    duration_ms: float
    summary: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    forced: bool = False
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job": self.job,
            "status": self.status.value,
            "as_of": iso(self.as_of),
            "trigger": self.trigger.value,
            "log_id": self.log_id,
            "duration_ms": round(self.duration_ms, 3),
            "summary": self.summary,
            "dry_run": self.dry_run,
            "forced": self.forced,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


class _Abandoned(Exception):
    """Our running row was closed by another run while we worked (we passed the deadline)."""


@dataclass(frozen=True)
class _Claim:
    log_id: int
    skipped_reason: str | None = None


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
        conn, claim = _claim_with_reconnect(get_connection, request, request_id)
    except JobsError as exc:
        # Failed before it started (secret, connection, authentication): still a failed run
        # for the logs, metrics and alarms, though it has no cron_job_logs row.
        logger.append_keys(run_id=None)
        _observe(_result(request, Status.FAILED, None, started, reason=str(exc)))
        raise
    logger.append_keys(run_id=claim.log_id)
    if claim.skipped_reason is not None:
        result = _result(request, Status.SKIPPED, claim.log_id, started, reason=claim.skipped_reason)
        _observe(result)
        return result
    try:
        return _work(request, conn, claim, started, deadline, get_connection)
    finally:
        if not request.dry_run:
            _run_pending(request, deadline if budget_s is not None else None, request_id, get_connection)


def _work(
    request: RunRequest,
    conn: Conn,
    claim: _Claim,
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
        result = _result(request, Status.SKIPPED, claim.log_id, started, reason=reason)
        _observe(result)
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

    result = _result(request, Status.SUCCEEDED, claim.log_id, started, summary=summary)
    _observe(result)
    return result


def _claim_with_reconnect(
    get_connection: Callable[[], Conn], request: RunRequest, request_id: str | None
) -> tuple[Conn, _Claim]:
    try:
        conn = get_connection()
    except Exception as exc:
        raise translate(exc, what=f"connecting to run {request.job.name}") from None
    try:
        return db.with_reconnect(lambda c: _claim(c, request, request_id), conn, get_connection)
    except Exception as exc:
        raise translate(exc, what=f"claiming a run of {request.job.name}") from None


def _claim(conn: Conn, request: RunRequest, request_id: str | None) -> _Claim:
    job = request.job
    params: dict[str, Any] = {
        "job_name": job.name,
        "as_of": request.as_of,
        "trigger": request.trigger.value,
        "request_id": request_id,
        "forced": request.force,
        "dry_run": request.dry_run,
        "deadline_s": float(job.lambda_timeout_s),
        "metadata": Jsonb({"event_id": request.event_id} if request.event_id else {}),
    }
    dedupe = (
        not request.force and not request.dry_run and (request.trigger is not Trigger.MANUAL or request.explicit_as_of)
    )
    if request.trigger is not Trigger.MANUAL and cutover.pg_cron_owns(conn, job.name, request.as_of):
        # pg_cron still schedules this job, or did until its cutover: it runs this occurrence
        reason = f"pg_cron runs occurrence {iso(request.as_of)} of {job.name} (see jobctl cutover); not run twice"
        with transaction(conn, timeout_ms=10_000):
            return _Claim(_skip(conn, params, reason), reason)
    for _ in range(3):  # the slot holder may finish between our attempt and our look
        with transaction(conn, timeout_ms=10_000):
            reaped = conn.execute(Q["reap_stale"], {**params}).fetchall()
            if reaped:
                logger.warning("closed abandoned runs", extra={"abandoned_run_ids": [r["id"] for r in reaped]})
            if dedupe:
                done = conn.execute(Q["find_success"], params).fetchone()
                if done:
                    hint = "" if request.trigger is not Trigger.MANUAL else "; pass force to run it again"
                    reason = f"duplicate: occurrence {iso(request.as_of)} already succeeded in run #{done['id']}{hint}"
                    return _Claim(_skip(conn, params, reason), reason)
            if request.trigger is not Trigger.MANUAL:
                state = schedule_state.state(conn, job)
                if state.is_paused(now()):
                    reason = _paused_reason(state)
                    return _Claim(_skip(conn, params, reason, deferred="paused"), reason)
            row = conn.execute(Q["claim"], params).fetchone()
            if row:
                return _Claim(row["id"])
            holder = conn.execute(Q["find_running"], params).fetchone()
            if holder is None:
                continue
            if holder["as_of"] == request.as_of:
                reason = (
                    f"duplicate delivery: occurrence {iso(request.as_of)} is already running as run #{holder['id']}"
                )
                # not known to have succeeded: if the holder dies, the watchdog's catch-up runs it
                return _Claim(_skip(conn, params, reason, deferred="duplicate"), reason)
            reason = (
                f"overlap: run #{holder['id']} of {job.name} (as_of {iso(holder['as_of'])}) is still in "
                f"progress until at most {iso(holder['deadline_at'])}"
            )
            if request.trigger is Trigger.MANUAL:
                reason += "; this occurrence did not run (run it again once that run ends)"
                return _Claim(_skip(conn, params, reason, deferred="overlap"), reason)
            if job.overlap is registry.Overlap.SKIP:
                reason += "; skipped by the job's overlap policy (skip): the next occurrence covers it"
                return _Claim(_skip(conn, params, reason, overlap="skip"), reason)
            if schedule_state.buffer(conn, job, request.as_of):
                reason += "; this occurrence waits (overlap policy buffer_one) and runs when that run ends"
                return _Claim(_skip(conn, params, reason, deferred="overlap", overlap="buffered"), reason)
            reason += (
                "; another occurrence already waits (overlap policy buffer_one), so the watchdog "
                "catches this one up within the job's catch-up window"
            )
            return _Claim(_skip(conn, params, reason, deferred="overlap", overlap="dropped"), reason)
    raise JobFailed(f"could not claim a run of {job.name}: the running slot kept changing hands")


def _skip(conn: Conn, params: dict[str, Any], reason: str, **marks: str) -> int:
    """Record a skipped delivery. ``deferred`` marks one that leaves its occurrence still to run
    (the watchdog's catch-up runs it); ``overlap`` says what the overlap policy did."""
    metadata = Jsonb({**params["metadata"].obj, **marks})
    row = conn.execute(Q["insert_skipped"], {**params, "reason": reason, "metadata": metadata}).fetchone()
    assert row is not None
    return int(row["id"])


def _paused_reason(state: schedule_state.JobState) -> str:
    who = f" by {state.changed_by}" if state.changed_by else ""
    when = f" at {iso(state.changed_at)}" if state.changed_at else ""
    until = f" until {iso(state.paused_until)}" if state.paused_until else ""
    note = f" ({state.note})" if state.note else ""
    return (
        f"paused{who}{when}{until}{note}: this occurrence did not run; "
        "`jobctl resume --catch-up` runs the occurrences missed while paused"
    )


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
    result = _result(request, Status.SKIPPED, log_id, started, reason=reason)
    _observe(result)
    return result


def _fail(
    get_connection: Callable[[], Conn], request: RunRequest, log_id: int, started: float, exc: BaseException
) -> RunResult:
    error = translate(exc, what=f"running {request.job.name}")
    _close(get_connection, log_id, Status.FAILED, str(error), {"error_type": error.kind, "sqlstate": error.sqlstate})
    result = _result(request, Status.FAILED, log_id, started, reason=str(error))
    _observe(result)
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


def _result(
    request: RunRequest,
    status: Status,
    log_id: int | None,
    started: float,
    *,
    summary: dict[str, Any] | None = None,
    reason: str | None = None,
) -> RunResult:
    return RunResult(
        job=request.job.name,
        status=status,
        as_of=request.as_of,
        trigger=request.trigger,
        log_id=log_id,
        duration_ms=(time.monotonic() - started) * 1000,
        summary=summary or {},
        dry_run=request.dry_run,
        forced=request.force,
        reason=reason,
    )


def _observe(result: RunResult) -> None:
    """One structured log line and the run's metrics (EMF, flushed by the handler)."""
    tracer.put_annotation(key="status", value=result.status.value)
    extra = {
        "status": result.status.value,
        "duration_ms": round(result.duration_ms, 3),
        "summary": result.summary,
        "dry_run": result.dry_run,
    }
    if result.status is Status.FAILED:
        logger.error("run failed", extra={**extra, "error": result.reason})
    elif result.status is Status.SKIPPED:
        logger.info("run skipped", extra={**extra, "reason": result.reason})
    else:
        logger.info("run succeeded", extra=extra)
    if result.dry_run:
        return  # a dry run changed nothing: no counts, no outcome metrics
    outcome = {Status.SUCCEEDED: METRIC_SUCCEEDED, Status.FAILED: METRIC_FAILED, Status.SKIPPED: METRIC_SKIPPED}
    metrics.add_metric(name=outcome[result.status], unit="Count", value=1)
    if result.status is Status.SUCCEEDED:
        metrics.add_metric(name=METRIC_DURATION, unit="Milliseconds", value=result.duration_ms)
        for key, value in result.summary.items():
            if isinstance(value, int):  # the counts; not the details beside them (skipped tables' reasons)
                metrics.add_metric(name=key, unit="Count", value=value)


__all__ = ["JobsError", "RunResult", "Status", "run"]
