"""The claim: the first, short transaction of a run, committed before any work (README, "How a
run works", step 1). It takes the job's single ``running`` slot, or records the delivery
``skipped`` with the reason (done already, paused, pg_cron's, a duplicate, an overlap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from shared import cutover, db, registry, schedule_state
from shared.db import Conn, transaction
from shared.errors import JobFailed, translate
from shared.events import RunRequest, Trigger, iso
from shared.observability import logger
from shared.queries import load

Q = load("runner")


@dataclass(frozen=True)
class Claim:
    log_id: int
    skipped_reason: str | None = None


def claim_run(
    get_connection: Callable[[], Conn], request: RunRequest, request_id: str | None, now: datetime
) -> tuple[Conn, Claim]:
    """Claim a run of ``request`` (``now`` judges pauses), reconnecting once if the connection was stale."""
    try:
        conn = get_connection()
    except Exception as exc:
        raise translate(exc, what=f"connecting to run {request.job.name}") from None
    try:
        return db.with_reconnect(lambda c: _claim(c, request, request_id, now), conn, get_connection)
    except Exception as exc:
        raise translate(exc, what=f"claiming a run of {request.job.name}") from None


def _claim(conn: Conn, request: RunRequest, request_id: str | None, now: datetime) -> Claim:
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
    if request.trigger is not Trigger.MANUAL and cutover.pg_cron_owns(conn, job.name, request.as_of):
        # pg_cron still schedules this job, or did until its cutover: it runs this occurrence
        reason = f"pg_cron runs occurrence {iso(request.as_of)} of {job.name} (see jobctl cutover); not run twice"
        with transaction(conn, timeout_ms=10_000):
            return Claim(_skip(conn, params, reason), reason)
    for _ in range(3):  # the slot holder may finish between our attempt and our look
        with transaction(conn, timeout_ms=10_000):
            found = _claim_once(conn, request, params, now)
            if found is not None:
                return found
    raise JobFailed(f"could not claim a run of {job.name}: the running slot kept changing hands")


def _claim_once(conn: Conn, request: RunRequest, params: dict[str, Any], now: datetime) -> Claim | None:
    """One attempt, inside the claim's transaction; None when the slot holder left meanwhile."""
    reaped = conn.execute(Q["reap_stale"], {**params}).fetchall()
    if reaped:
        logger.warning("closed abandoned runs", extra={"abandoned_run_ids": [r["id"] for r in reaped]})
    dedupe = (
        not request.force and not request.dry_run and (request.trigger is not Trigger.MANUAL or request.explicit_as_of)
    )
    if dedupe:
        done = conn.execute(Q["find_success"], params).fetchone()
        if done:
            hint = "" if request.trigger is not Trigger.MANUAL else "; pass force to run it again"
            reason = f"duplicate: occurrence {iso(request.as_of)} already succeeded in run #{done['id']}{hint}"
            return Claim(_skip(conn, params, reason), reason)
    if request.trigger is not Trigger.MANUAL:
        state = schedule_state.state(conn, request.job)
        if state.is_paused(now):
            reason = _paused_reason(state)
            return Claim(_skip(conn, params, reason, deferred="paused"), reason)
    row = conn.execute(Q["claim"], params).fetchone()
    if row:
        return Claim(row["id"])
    holder = conn.execute(Q["find_running"], params).fetchone()
    if holder is None:
        return None
    return _slot_taken(conn, request, params, holder)


def _slot_taken(conn: Conn, request: RunRequest, params: dict[str, Any], holder: dict[str, Any]) -> Claim:
    """The running slot is held: a duplicate delivery, or an overlap handled by the job's policy."""
    job = request.job
    if holder["as_of"] == request.as_of:
        reason = f"duplicate delivery: occurrence {iso(request.as_of)} is already running as run #{holder['id']}"
        # not known to have succeeded: if the holder dies, the watchdog's catch-up runs it
        return Claim(_skip(conn, params, reason, deferred="duplicate"), reason)
    reason = (
        f"overlap: run #{holder['id']} of {job.name} (as_of {iso(holder['as_of'])}) is still in "
        f"progress until at most {iso(holder['deadline_at'])}"
    )
    if request.trigger is Trigger.MANUAL:
        reason += "; this occurrence did not run (run it again once that run ends)"
        return Claim(_skip(conn, params, reason, deferred="overlap"), reason)
    if job.overlap is registry.Overlap.SKIP:
        reason += "; skipped by the job's overlap policy (skip): the next occurrence covers it"
        return Claim(_skip(conn, params, reason, overlap="skip"), reason)
    if schedule_state.buffer(conn, job, request.as_of):
        reason += "; this occurrence waits (overlap policy buffer_one) and runs when that run ends"
        return Claim(_skip(conn, params, reason, deferred="overlap", overlap="buffered"), reason)
    reason += (
        "; another occurrence already waits (overlap policy buffer_one), so the watchdog "
        "catches this one up within the job's catch-up window"
    )
    return Claim(_skip(conn, params, reason, deferred="overlap", overlap="dropped"), reason)


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
