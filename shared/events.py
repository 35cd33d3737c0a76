"""The events a job's Lambda accepts, parsed into one typed request: the EventBridge scheduled
event (its ``time`` snapped to the occurrence's minute is the as_of; from jobctl's local
scheduler a local run) and the manual payloads of docs/deploy.md, "Run a job by hand" (``{}``,
``as_of``, ``dry_run``, ``force``; a manual as_of is kept exactly as given). Anything else is
refused with a :class:`~shared.errors.ValidationError` before any database work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool
from pydantic import ValidationError as PydanticValidationError

from shared.cron import scheduled_minute
from shared.errors import ValidationError
from shared.naming import LOCAL_SCHEDULER_SOURCE
from shared.registry import Job

#: How far ahead of the clock an as_of may be (clock skew between EventBridge and Lambda).
FUTURE_TOLERANCE = timedelta(minutes=5)
#: No occurrence is older than this year (catches a mistyped year; the app is younger).
MIN_AS_OF_YEAR = 2000


def iso(moment: datetime) -> str:
    """``2026-11-29T00:00:00Z``: a time in UTC, ISO 8601 with ``Z`` (a fraction of a second only if it has one)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def eventbridge_time(moment: datetime) -> str:
    """``2026-11-29T00:00:00Z``: the form EventBridge writes in a scheduled event's ``time`` (whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    LOCAL = "local"
    #: Run by the watchdog for an occurrence that left no run (``shared.catchup``).
    CATCHUP = "catchup"


class _ManualPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: AwareDatetime | None = None
    dry_run: StrictBool = False
    force: StrictBool = False


class _ScheduledEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    source: str
    time: AwareDatetime
    id: str | None = None


@dataclass(frozen=True)
class RunRequest:
    """One request to run a job: which occurrence, from which trigger, how."""

    job: Job
    as_of: datetime
    trigger: Trigger
    explicit_as_of: bool = True
    dry_run: bool = False
    force: bool = False
    event_id: str | None = None


def _explain(exc: PydanticValidationError, what: str) -> str:
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "event"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown field {field!r}")
        elif err["type"] == "timezone_aware":
            problems.append(f"{field}: give a UTC offset, e.g. 2026-11-28T00:00:00Z")
        else:
            problems.append(f"{field}: {err['msg']}")
    return (
        f"invalid {what}: "
        + "; ".join(problems)
        + '. A manual run takes {} or any of {"as_of": "<ISO-8601 time with offset>", '
        '"dry_run": true, "force": true}'
    )


def parse_event(job: Job, event: Any, *, now: datetime | None = None) -> RunRequest:
    """Turn a Lambda event into a :class:`RunRequest`, or raise ValidationError saying why."""
    now = now or datetime.now(UTC)
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise ValidationError(f"invalid event: expected a JSON object, got {type(event).__name__}")
    if "detail-type" in event:
        try:
            scheduled = _ScheduledEvent.model_validate(event)
        except PydanticValidationError as exc:
            raise ValidationError(_explain(exc, "scheduled event")) from None
        if scheduled.detail_type != "Scheduled Event":
            raise ValidationError(f"invalid event: detail-type {scheduled.detail_type!r} is not 'Scheduled Event'")
        if scheduled.source == "aws.events":
            trigger = Trigger.SCHEDULE
        elif scheduled.source == LOCAL_SCHEDULER_SOURCE:
            trigger = Trigger.LOCAL
        else:
            raise ValidationError(f"invalid event: source {scheduled.source!r} is not aws.events")
        as_of = scheduled_minute(_check_time(scheduled.time, now))
        return RunRequest(job=job, as_of=as_of, trigger=trigger, event_id=scheduled.id)
    try:
        payload = _ManualPayload.model_validate(event)
    except PydanticValidationError as exc:
        raise ValidationError(_explain(exc, "manual payload")) from None
    explicit = payload.as_of is not None
    as_of = _check_time(payload.as_of, now) if payload.as_of is not None else now
    return RunRequest(
        job=job,
        as_of=as_of,
        trigger=Trigger.MANUAL,
        explicit_as_of=explicit,
        dry_run=payload.dry_run,
        force=payload.force,
    )


def _check_time(moment: datetime, now: datetime) -> datetime:
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+23:59 falls before year 1 in UTC
        raise ValidationError(f"invalid as_of {moment.isoformat()}: out of range") from None
    if moment > now + FUTURE_TOLERANCE:
        raise ValidationError(
            f"invalid as_of {moment.isoformat()}: it is in the future (now is {now.isoformat(timespec='seconds')}); "
            "a job can only run for an occurrence that has come"
        )
    if moment.year < MIN_AS_OF_YEAR:
        raise ValidationError(f"invalid as_of {moment.isoformat()}: before the year {MIN_AS_OF_YEAR}")
    return moment
