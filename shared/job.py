"""What a scheduled job is: :class:`Job`, how it runs (:class:`Mode`) and what an overlap does
(:class:`Overlap`). The jobs themselves are listed in :mod:`shared.registry`.

Plain data and the standard library only: it must import fast in a cold Lambda.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Mode(StrEnum):
    """How the runner executes a job's SQL."""

    #: One transaction: the work and the run's `succeeded` row commit together.
    TRANSACTIONAL = "transactional"
    #: Bounded batches, each its own transaction, within the run's time budget.
    BATCHED = "batched"
    #: Statements that Postgres refuses inside a transaction (VACUUM), run in autocommit.
    MAINTENANCE = "maintenance"


class Overlap(StrEnum):
    """What a scheduled (or catch-up) occurrence does when it finds another run of its job in progress."""

    #: Dropped and recorded (``skipped``), no alarm: the next occurrence covers it (hourly cleanups).
    SKIP = "skip"
    #: At most one occurrence waits; it runs as soon as the running one finishes (or, if that run
    #: died, once its deadline has passed): pg_cron's queue, capped at one.
    BUFFER_ONE = "buffer_one"


_NAME = re.compile(r"^[a-z][a-z0-9-]{2,62}$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Job:
    """One scheduled job, exactly as operators know it from the guide."""

    name: str
    cron: str
    """Standard 5-field Unix cron, in UTC, as in the guide."""
    description: str
    sql_function: str
    """The guide's database function (``SELECT reset_daily_challenges();`` works by hand).

    The runner calls ``job_<sql_function>(p_as_of, ...)``, the same logic without the
    SQL-side logging, so that the work and the run's log row commit together."""
    summary_keys: tuple[str, ...]
    """The counts the job returns; each becomes a CloudWatch metric and a dashboard line."""
    timeout_s: int = 60
    """The job's time budget: statement timeout and run deadline. The Lambda timeout is a
    little above it (see :func:`lambda_timeout_s`)."""
    memory_mb: int = 256
    depends_on: tuple[str, ...] = ()
    """Jobs whose work for the same day must be done first (checked before the work)."""
    completion_check: str | None = None
    """For a job others depend on: a SQL function ``f(p_as_of timestamptz) -> boolean`` that
    says whether this job's work for as_of's day is done (a data watermark, not the run log,
    so a catch-up run on a later day counts too)."""
    mode: Mode = Mode.TRANSACTIONAL
    params: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Named arguments passed to the SQL function (``p_<name> => value``)."""
    resumable: bool = False
    """For a BATCHED job: its batches make up one occurrence's work, which must all be done.
    The function keeps the occurrence's progress (cursor and counts, ``job_batch_progress``)
    and reports the whole occurrence's counts so far; a run stopped by its budget with work
    left fails, and the next delivery resumes after the committed batches. Without it
    (cleanup-expired-stories) each batch stands alone and the next occurrence takes the rest."""
    vacuum_tables: tuple[str, ...] = ()
    """For a MAINTENANCE job: the tables it VACUUMs (ANALYZE), outside any transaction. The
    job role's MAINTAIN grants (Postgres 17+, V004) cover exactly these (a test checks)."""
    overlap: Overlap = Overlap.BUFFER_ONE
    """What a scheduled occurrence does when the job is still running (see :class:`Overlap`).
    Either way a routine overlap raises nothing: no Lambda retry, no dead letter, no alarm."""
    catchup_window: timedelta = timedelta(hours=24)
    """How far back the watchdog runs occurrences that left no run (trigger ``catchup``);
    older misses are only reported (the ``MissedRuns`` alarm)."""
    catchup_latest_only: bool = False
    """True for jobs whose latest occurrence supersedes the earlier ones (leaderboards,
    cleanups): the watchdog catches up only the latest, and earlier ones are never missed."""
    dependency_deadline: timedelta = timedelta(hours=2)
    """How long after its occurrence a run whose dependency has not succeeded waits (recorded
    ``skipped``, retried by the dependency's success and by the watchdog) before it fails."""
    pause_after_failures: int = 3
    """After this many consecutive occurrences failed, the job pauses itself and raises one alarm."""

    @property
    def work_function(self) -> str:
        return f"job_{self.sql_function}"

    @property
    def lambda_timeout_s(self) -> int:
        return lambda_timeout_s(self.timeout_s)


#: Seconds the Lambda function gets beyond the job's own budget: time to roll back, write
#: the failed row and flush metrics after a statement timeout, instead of being killed.
LAMBDA_GRACE_S = 30


def lambda_timeout_s(timeout_s: int) -> int:
    return timeout_s + LAMBDA_GRACE_S


def params(**kwargs: Any) -> MappingProxyType[str, Any]:
    return MappingProxyType(dict(kwargs))


class UnknownJobError(KeyError):
    """Raised for a job name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; say it plainly
        return str(self.args[0])


def validate(jobs: tuple[Job, ...]) -> None:
    """Fail at import time on a malformed registry (caught by every test run)."""
    by_name = {job.name: job for job in jobs}
    seen_functions: set[str] = set()
    for job in jobs:
        assert _NAME.match(job.name), f"bad job name {job.name!r}"
        assert _IDENT.match(job.sql_function), f"{job.name}: bad sql_function"
        assert job.sql_function not in seen_functions, f"{job.name}: duplicate sql_function"
        seen_functions.add(job.sql_function)
        assert 1 <= job.timeout_s <= 870, f"{job.name}: timeout must leave room under Lambda's 900 s"
        assert job.summary_keys and all(_IDENT.match(k) for k in job.summary_keys), job.name
        assert all(_IDENT.match(p) for p in job.params), f"{job.name}: bad parameter name"
        assert job.completion_check is None or _IDENT.match(job.completion_check), job.name
        assert all(_IDENT.match(t) for t in job.vacuum_tables), f"{job.name}: bad table name"
        assert (job.mode is Mode.MAINTENANCE) == bool(job.vacuum_tables), f"{job.name}: vacuum_tables: MAINTENANCE"
        assert not job.resumable or job.mode is Mode.BATCHED, f"{job.name}: resumable: BATCHED only"
        assert timedelta(0) < job.catchup_window <= timedelta(days=31), f"{job.name}: catch-up window 1 s .. 31 days"
        assert timedelta(0) <= job.dependency_deadline <= timedelta(days=1), f"{job.name}: dependency deadline"
        assert job.pause_after_failures >= 1, f"{job.name}: pause_after_failures must be at least 1"
        for dep in job.depends_on:
            assert dep in by_name, f"{job.name} depends on unknown job {dep!r}"
            assert by_name[dep].completion_check, f"{dep} is depended on but has no completion_check"
