"""Running the Lambda handler on this machine: by hand, on a simulated clock, in real time.

Every local run goes through ``functions.handler.handler`` exactly as Lambda calls it:
the same event shapes, a small stand-in for Lambda's context object, the job name and
database in the environment. Nothing here talks SQL to run a job.

- :func:`invoke_handler` runs one event through the handler.
- :func:`occurrences` + :func:`simulate` fast-forward a clock through the registry's
  schedules (what EventBridge would have fired, in order).
- :class:`Scheduler` fires jobs on their schedules in real time until stopped; its clock
  and its wait are injectable, so tests drive it with a fake clock and no real waiting.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import naming, registry
from shared.cron import next_fire_times
from shared.errors import ValidationError, redact

#: ``(job_name, event) -> result``: how a simulation or the scheduler runs one event.
Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]

LOCAL_REGION = "local"
LOCAL_ACCOUNT = "000000000000"


# --------------------------------------------------------------------------- times


def parse_time(text: str) -> datetime:
    """An ISO-8601 time (``2026-11-01``, ``2026-11-01T02:00``, ``...Z``, ``...+02:00``) in UTC.

    A time without an offset is read as UTC, like every schedule in the registry.
    Raises :class:`shared.errors.ValidationError` with what to write instead.
    """
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise ValidationError(
            f"{text!r} is not a time; write ISO-8601 such as 2026-11-01 or 2026-11-01T02:00:00Z (UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """``2026-11-29T00:00:00Z``: the form EventBridge writes in an event's ``time``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- events


def scheduled_event(
    at: datetime,
    *,
    source: str = naming.LOCAL_SCHEDULER_SOURCE,
    job_name: str | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """The event EventBridge delivers for a scheduled rule firing at ``at``."""
    resources = []
    if job_name:
        resources = [f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:rule/{naming.rule_name(job_name, prefix)}"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": source,
        "account": LOCAL_ACCOUNT,
        "time": iso(at),
        "region": LOCAL_REGION,
        "resources": resources,
        "detail": {},
    }


def manual_event(*, as_of: datetime | None = None, dry_run: bool = False, force: bool = False) -> dict[str, Any]:
    """The payload an operator sends by hand (Lambda console "Test", ``jobctl run``/``invoke``)."""
    event: dict[str, Any] = {}
    if as_of is not None:
        event["as_of"] = as_of.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if dry_run:
        event["dry_run"] = True
    if force:
        event["force"] = True
    return event


# --------------------------------------------------------------------------- the handler


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that the handler and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._started + self.timeout_s - time.monotonic()) * 1000))

    @classmethod
    def for_job(cls, job: registry.Job) -> LambdaContext:
        name = naming.function_name(job.name)
        return cls(
            function_name=name,
            memory_limit_in_mb=job.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{name}",
            timeout_s=job.lambda_timeout_s,
        )


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for one call and put the previous values back."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class _Sink:
    """A write-only text stream that drops everything."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


@contextlib.contextmanager
def _handler_output(verbose: bool) -> Iterator[None]:
    """Send what the handler prints (Powertools JSON logs, EMF metrics) to stderr or nowhere.

    Stdout stays clean for jobctl's own output (``--json`` must be parseable). Powertools'
    log handler keeps the stream it was created with, so its stream is swapped for the
    call too, not only ``sys.stdout``.
    """
    target: Any = sys.stderr if verbose else _Sink()
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", naming.SERVICE)
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    for name, lg in [(service, logging.getLogger(service)), *logging.Logger.manager.loggerDict.items()]:
        if not isinstance(lg, logging.Logger) or not (name == service or name.startswith(service + ".")):
            continue
        for handler in lg.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                swapped.append((handler, handler.stream))
                handler.stream = target
    try:
        with contextlib.redirect_stdout(target):
            yield
    finally:
        for handler, stream in swapped:
            handler.stream = stream


def load_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    module = importlib.import_module("functions.handler")
    return module.handler  # type: ignore[no-any-return]


_last_database_url: str | None = None


def invoke_handler(job_name: str, event: dict[str, Any], *, database_url: str, verbose: bool = False) -> dict[str, Any]:
    """Run ``event`` through the Lambda handler for ``job_name``, as Lambda would.

    The handler reads ``JOB_NAME`` and ``DATABASE_URL`` at call time; both are set for
    the call and restored afterwards. Like a warm Lambda, the process keeps one
    connection across calls (dropped when the database changes). A failed run raises
    (a ``JobsError``), as on Lambda; so does an invalid event (``ValidationError``).
    """
    global _last_database_url
    job = registry.get(job_name)
    handler = load_handler()
    if database_url != _last_database_url:
        from shared.db import reset_connection

        reset_connection()
        _last_database_url = database_url
    env = {"JOB_NAME": job.name, "DATABASE_URL": database_url}
    with _environment(env), _handler_output(verbose), warnings.catch_warnings():
        if not verbose:  # e.g. Powertools' "No application metrics to publish" on a skip
            warnings.simplefilter("ignore")
        return handler(event, LambdaContext.for_job(job))


# --------------------------------------------------------------------------- simulation


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


# --------------------------------------------------------------------------- real-time scheduler


class Scheduler:
    """Fires every job at its scheduled times, in real time, until stopped.

    ``clock()`` returns the current UTC time; ``wait(seconds)`` waits up to that long and
    returns True when the scheduler was stopped meanwhile. Both are injectable: a test
    passes a fake clock whose wait advances it, so a day passes in milliseconds.

    Due jobs fire one after the other in registry order (a late run still carries its
    scheduled time, so as_of is right). :meth:`stop` lets the run in progress finish and
    starts no other.
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
    ) -> None:
        self.invoke = invoke
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
        times = {job.name: next_fire_times(job.cron, after)[0] for job in self.jobs}
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
