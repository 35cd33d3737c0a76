"""A run's outcome: what it returns (:class:`RunResult`) and what it leaves in the logs and
metrics (:func:`observe`; the alarms on them: docs/deploy.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.events import RunRequest, Trigger, iso
from shared.naming import METRIC_DURATION, METRIC_FAILED, METRIC_SKIPPED, METRIC_SUCCEEDED
from shared.observability import logger, metrics, tracer


class Status(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


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


def make_result(
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


def observe(result: RunResult) -> None:
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
