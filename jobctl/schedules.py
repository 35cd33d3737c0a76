"""The registry's schedules fired on this machine: on a simulated clock (:func:`simulate`) or in
real time (:class:`Scheduler`), each occurrence through the handler (:mod:`jobctl.local`).

The scheduler's clock and wait are injectable, so tests drive it with a fake clock and no
real waiting. See docs/operate.md.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobctl.local import Invoke, scheduled_event, utcnow
from shared import naming, registry
from shared.cron import next_fire_times
from shared.errors import redact


@dataclass(frozen=True)
class Occurrence:
    """One scheduled firing of one job."""

    at: datetime
    job: str


def occurrences(start: datetime, end: datetime, jobs: Sequence[registry.Job] = registry.JOBS) -> list[Occurrence]:
    """Every fire time of every job in ``[start, end)``, ordered by (time, registry order)."""
    order = {job.name: i for i, job in enumerate(jobs)}
    found: list[Occurrence] = []
    before_start = start - timedelta(microseconds=1)
    for job in jobs:
        cursor = before_start
        while True:
            batch = next_fire_times(job.cron, cursor, count=256)
            found.extend(Occurrence(at, job.name) for at in batch if at < end)
            if batch[-1] >= end:
                break
            cursor = batch[-1]
    found.sort(key=lambda occ: (occ.at, order[occ.job]))
    return found


@dataclass
class Outcome:
    """What happened to one occurrence (after at most ``1 + retries`` attempts)."""

    occurrence: Occurrence
    status: str  # succeeded | failed | skipped
    attempts: int
    duration_ms: float
    result: dict[str, Any] | None = None
    error: str | None = None


def fire(
    occurrence: Occurrence, invoke: Invoke, *, retries: int = 1, source: str = naming.LOCAL_SCHEDULER_SOURCE
) -> Outcome:
    """Fire one occurrence with a scheduled event; retry a failure like Lambda's async retry.

    Lambda retries a failed asynchronous invocation with the SAME event, so the retry
    carries the same ``id`` and ``time``. Here the retry is immediate (Lambda waits a
    minute or more), which is what a simulation wants.
    """
    event = scheduled_event(occurrence.at, source=source, job_name=occurrence.job)
    started = time.monotonic()
    error: str | None = None
    for attempt in range(1, retries + 2):
        try:
            result = invoke(occurrence.job, event)
        except Exception as exc:  # a failed run raises so that Lambda retries; so do we
            error = redact(str(exc) or type(exc).__name__)
            continue
        status = str(result.get("status", "succeeded"))
        return Outcome(occurrence, status, attempt, (time.monotonic() - started) * 1000, result=result)
    return Outcome(occurrence, "failed", retries + 1, (time.monotonic() - started) * 1000, error=error)


def simulate(
    plan: Iterable[Occurrence],
    invoke: Invoke,
    *,
    retries: int = 1,
    on_outcome: Callable[[Outcome], None] | None = None,
    before: Callable[[datetime], None] | None = None,
) -> list[Outcome]:
    """Fire every occurrence in order; a failure is reported and the simulation goes on.

    ``before(at)`` is called once per distinct fire time, before its occurrences fire (the
    demo uses it to let the app's users be active between runs).
    """
    outcomes = []
    previous: datetime | None = None
    for occurrence in plan:
        if before is not None and occurrence.at != previous:
            before(occurrence.at)
            previous = occurrence.at
        outcome = fire(occurrence, invoke, retries=retries)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


@dataclass
class JobTally:
    job: str
    fired: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    total_ms: float = 0.0

    @property
    def avg_ms(self) -> float:
        return self.total_ms / self.fired if self.fired else 0.0


def tally(outcomes: Iterable[Outcome], jobs: Sequence[registry.Job] = registry.JOBS) -> list[JobTally]:
    """Per-job counts of a simulation, in registry order (jobs that never fired included)."""
    rows = {job.name: JobTally(job.name) for job in jobs}
    for outcome in outcomes:
        row = rows.setdefault(outcome.occurrence.job, JobTally(outcome.occurrence.job))
        row.fired += 1
        row.total_ms += outcome.duration_ms
        row.retried += outcome.attempts > 1
        if outcome.status == "succeeded":
            row.succeeded += 1
        elif outcome.status == "skipped":
            row.skipped += 1
        else:
            row.failed += 1
    return list(rows.values())


class Scheduler:
    """Fires every job at its scheduled times, in real time, until stopped.

    ``clock()`` returns the current UTC time; ``wait(seconds)`` waits up to that long and
    returns True when the scheduler was stopped meanwhile. Both are injectable: a test
    passes a fake clock whose wait advances it, so a day passes in milliseconds.

    Due jobs fire one after the other in registry order (a late run still carries its
    scheduled time, so as_of is right). :meth:`stop` lets the run in progress finish and
    starts no other. ``cron_of(job)`` gives each job's schedule in force (``jobctl
    reschedule`` records it in the database); a paused job's deliveries are skipped by the
    runner, as on AWS.
    """

    #: The default wait wakes up at least this often to notice a stop request.
    POLL_S = 1.0

    def __init__(
        self,
        invoke: Invoke,
        *,
        jobs: Sequence[registry.Job] = registry.JOBS,
        clock: Callable[[], datetime] = utcnow,
        wait: Callable[[float], bool] | None = None,
        retries: int = 1,
        on_outcome: Callable[[Outcome], None] | None = None,
        on_idle: Callable[[datetime, list[str]], None] | None = None,
        cron_of: Callable[[registry.Job], str] | None = None,
    ) -> None:
        self.invoke = invoke
        self.cron_of = cron_of or (lambda job: job.cron)
        self.jobs = tuple(jobs)
        self.clock = clock
        self.stop_event = threading.Event()
        self.wait = wait or (lambda seconds: self.stop_event.wait(min(seconds, self.POLL_S)))
        self.retries = retries
        self.on_outcome = on_outcome
        self.on_idle = on_idle

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    def stop(self) -> None:
        self.stop_event.set()

    def next_due(self, after: datetime) -> tuple[datetime, list[str]]:
        """The next fire time strictly after ``after`` and the jobs due then (registry order)."""
        times = {job.name: next_fire_times(self.cron_of(job), after)[0] for job in self.jobs}
        at = min(times.values())
        return at, [job.name for job in self.jobs if times[job.name] == at]

    def run(self, *, until: datetime | None = None) -> list[Outcome]:
        """Loop until stopped (or until the next fire time would be at or after ``until``)."""
        outcomes: list[Outcome] = []
        cursor = self.clock()
        while not self.stopped:
            at, due = self.next_due(cursor)
            if until is not None and at >= until:
                break
            if self.on_idle is not None:
                self.on_idle(at, due)
            while not self.stopped and (delay := (at - self.clock()).total_seconds()) > 0:
                self.wait(delay)
            if self.stopped:
                break
            for job_name in due:
                if self.stopped:  # stop requested during the previous run: start no other
                    break
                outcome = fire(Occurrence(at, job_name), self.invoke, retries=self.retries)
                outcomes.append(outcome)
                if self.on_outcome is not None:
                    self.on_outcome(outcome)
            cursor = at
        return outcomes


@contextlib.contextmanager
def stop_on_signals(scheduler: Scheduler, on_stop: Callable[[], None] | None = None) -> Iterator[None]:
    """Ctrl-C / SIGTERM: the first asks the scheduler to stop after the run in progress;
    a second Ctrl-C interrupts at once (the run's log row then expires at its deadline)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def request_stop(signum: int, frame: Any) -> None:
        if scheduler.stopped and signum == signal.SIGINT:
            raise KeyboardInterrupt
        scheduler.stop()
        if on_stop is not None:
            on_stop()

    for sig in previous:
        signal.signal(sig, request_stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
