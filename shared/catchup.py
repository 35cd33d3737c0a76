"""Catch-up: run each occurrence the watchdog found unsettled inside its job's window, one at a
time in time order then registry order, through :func:`shared.runner.run` with trigger
``catchup`` (docs/operate.md, "Catch-up (the watchdog)"). A paused or running job, or one that
could not finish in the time left, is left for the next check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import db, registry, runner
from shared.db import Conn
from shared.errors import JobsError
from shared.events import RunRequest, Trigger, iso
from shared.watchdog import Check

#: Seconds kept back from the budget to record an outcome (as the job handler does).
RESERVE_S = 15


@dataclass(frozen=True)
class Outcome:
    job: str
    as_of: datetime
    status: str
    """succeeded | failed | skipped (the runner's), or paused | running | later (not attempted)."""
    reason: str | None = None
    log_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "as_of": iso(self.as_of),
            "status": self.status,
            "reason": self.reason,
            "log_id": self.log_id,
        }


def catch_up(
    found: Check,
    *,
    get_connection: Callable[[], Conn] = db.get_connection,
    remaining_s: Callable[[], float] | None = None,
    after_run: Callable[[], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    request_id: str | None = None,
) -> list[Outcome]:
    """Run every occurrence of ``found.to_catch_up`` that can run now; one :class:`Outcome` each.

    ``after_run`` is called after each run (the Lambda flushes that run's metrics there);
    ``request_id`` goes on each run's row (the watchdog Lambda's, to find its log lines).
    """
    outcomes: list[Outcome] = []
    for due in found.to_catch_up:
        job = registry.get(due.job)
        budget: float | None = None
        if due.job in found.paused:
            outcome = Outcome(due.job, due.as_of, "paused", f"paused: {found.paused[due.job]}".rstrip(": "))
        elif due.job in found.busy:
            outcome = Outcome(due.job, due.as_of, "running", f"run #{found.busy[due.job]} is in progress")
        elif remaining_s is not None and (budget := remaining_s() - RESERVE_S) < job.timeout_s:
            outcome = Outcome(due.job, due.as_of, "later", "not enough time left in this check")
        else:
            request = RunRequest(job=job, as_of=due.as_of, trigger=Trigger.CATCHUP)
            try:
                result = runner.run(request, request_id=request_id, budget_s=budget, get_connection=get_connection)
                outcome = Outcome(due.job, due.as_of, result.status.value, result.reason, result.log_id)
            except JobsError as exc:  # recorded by the runner (failed row, metrics)
                outcome = Outcome(due.job, due.as_of, "failed", str(exc))
            finally:
                if after_run is not None:
                    after_run()
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes
