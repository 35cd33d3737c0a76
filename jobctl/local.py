"""Running the Lambda handler on this machine (:func:`invoke_handler`), as Lambda calls it.

The same event shapes, a small stand-in for Lambda's context object, the job name and the
database in the environment; nothing here talks SQL to run a job. The schedules are fired
by :mod:`jobctl.schedules`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared import naming, registry
from shared.errors import ValidationError
from shared.events import eventbridge_time, iso

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
        "time": eventbridge_time(at),
        "region": LOCAL_REGION,
        "resources": resources,
        "detail": {},
    }


def manual_event(*, as_of: datetime | None = None, dry_run: bool = False, force: bool = False) -> dict[str, Any]:
    """The payload an operator sends by hand (Lambda console "Test", ``jobctl run``/``invoke``)."""
    event: dict[str, Any] = {}
    if as_of is not None:
        event["as_of"] = iso(as_of)
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
