"""The one registry of scheduled jobs.

Everything reads this module: the CDK app (one function and one rule per job),
the Lambda handlers, the runner, the CLI and local scheduler, the README table
and the tests. Adding a job is one entry here, its SQL function under
``shared/sql/jobs/functions/`` and its tests.

The registry is plain data on purpose: it must import fast in a cold Lambda and
carry no dependency beyond the standard library.
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


def _params(**kwargs: Any) -> MappingProxyType[str, Any]:
    return MappingProxyType(dict(kwargs))


# Order matters only where two jobs share a fire time and one reads what the other writes
# (local simulate fires same-time jobs in this order; EventBridge fires them at once):
# update-user-streaks before calculate-daily-metrics, and update-leaderboards after the
# jobs that take users out of good standing, so a ban shows on the board the same hour.
JOBS: tuple[Job, ...] = (
    Job(
        name="reset-daily-challenges",
        cron="0 0 * * *",
        description="Archive old challenges, activate today's (create one from the template pool if none).",
        sql_function="reset_daily_challenges",
        summary_keys=("challenges_archived", "progress_expired", "challenges_activated", "challenges_created"),
        # a day's challenge must be activated, late rather than never: buffer, catch up a day
        overlap=Overlap.BUFFER_ONE,
        catchup_window=timedelta(hours=24),
    ),
    Job(
        name="update-user-streaks",
        cron="0 0 * * *",
        description="Increment or break streaks for yesterday, catching up day by day after an outage.",
        sql_function="update_user_streaks",
        summary_keys=("days_processed", "streaks_incremented", "streaks_broken"),
        completion_check="streaks_done_for",
        # any later run also catches up the days before it, but metrics wait for this one
        overlap=Overlap.BUFFER_ONE,
        catchup_window=timedelta(hours=24),
    ),
    Job(
        name="calculate-daily-metrics",
        cron="0 1 * * *",
        description="Aggregate yesterday's statistics into daily_metrics (needs yesterday's streaks).",
        sql_function="calculate_daily_metrics",
        summary_keys=("metrics_rows_written", "daily_active_users", "new_signups", "messages_sent"),
        depends_on=("update-user-streaks",),
        overlap=Overlap.BUFFER_ONE,
        catchup_window=timedelta(hours=24),
        # EventBridge may deliver the streak run up to an hour late: wait for it two hours
        dependency_deadline=timedelta(hours=2),
    ),
    Job(
        name="send-daily-reminders",
        cron="0 18 * * *",
        description="Remind users whose streak is at risk today (one in-app notification per user per day).",
        sql_function="send_daily_reminders",
        summary_keys=("notifications_created",),
        overlap=Overlap.BUFFER_ONE,
        # a reminder is for "today": caught up the same evening, never the next day
        catchup_window=timedelta(hours=5),
    ),
    Job(
        name="cleanup-expired-stories",
        cron="0 * * * *",
        description="Delete stories older than 24 h with their views and reactions, in bounded batches.",
        sql_function="cleanup_expired_stories",
        summary_keys=("stories_deleted", "views_deleted", "reactions_deleted", "batches", "stories_remaining"),
        mode=Mode.BATCHED,
        params=_params(batch_size=5000),
        # the next hour deletes whatever this one left: skip, catch up only the latest
        overlap=Overlap.SKIP,
        catchup_window=timedelta(hours=2),
        catchup_latest_only=True,
    ),
    Job(
        name="cleanup-expired-sessions",
        cron="*/15 * * * *",
        description="Delete expired typing indicators and mark users offline after 15 minutes without a heartbeat.",
        sql_function="cleanup_expired_sessions",
        summary_keys=("typing_indicators_deleted", "users_marked_offline"),
        overlap=Overlap.SKIP,
        catchup_window=timedelta(hours=1),
        catchup_latest_only=True,
    ),
    Job(
        name="process-moderation-queue",
        cron="0 * * * *",
        description=(
            "Auto-ban users with enough distinct pending reports in 7 days; resolve reports against banned users."
        ),
        sql_function="process_moderation_queue",
        summary_keys=("users_banned", "reports_actioned", "reports_resolved"),
        params=_params(min_reporters=3),
        # the next run sees every pending report of the last 7 days again
        overlap=Overlap.SKIP,
        catchup_window=timedelta(hours=2),
        catchup_latest_only=True,
    ),
    Job(
        name="send-weekly-reports",
        cron="0 0 * * 0",
        description=(
            "Weekly activity summary for each user active in the last complete Sunday-Saturday week at as_of, "
            "labelled by its dates."
        ),
        sql_function="send_weekly_reports",
        summary_keys=("notifications_created", "active_users"),
        timeout_s=120,
        memory_mb=512,
        # one report per week: a late report on Monday beats none
        overlap=Overlap.BUFFER_ONE,
        catchup_window=timedelta(days=2),
    ),
    Job(
        name="cleanup-inactive-accounts",
        cron="0 2 1 * *",
        description=(
            "Mark active users with no activity for 180 days as inactive (never deleted); "
            "their next activity makes them active again."
        ),
        sql_function="cleanup_inactive_accounts",
        summary_keys=("users_marked_inactive",),
        params=_params(inactive_days=180),
        overlap=Overlap.BUFFER_ONE,
        catchup_window=timedelta(days=7),
    ),
    Job(
        name="update-leaderboards",
        cron="0 * * * *",
        description="Refresh the leaderboard materialized views concurrently (all-time, this ISO week, per language).",
        sql_function="update_leaderboards",
        summary_keys=("views_refreshed", "global_rows", "weekly_rows", "language_rows"),
        memory_mb=512,
        params=_params(top_n=1000),
        # each refresh replaces the boards whole: skip, catch up only the latest
        overlap=Overlap.SKIP,
        catchup_window=timedelta(hours=2),
        catchup_latest_only=True,
    ),
    Job(
        name="database-maintenance",
        cron="0 3 1 * *",
        description=(
            "VACUUM (ANALYZE) the tables the jobs write (as the owner on Postgres 15/16), outside any "
            "transaction, reporting skipped tables; prune old job logs."
        ),
        sql_function="database_maintenance",
        summary_keys=("tables_vacuumed", "tables_skipped", "logs_deleted"),
        timeout_s=600,
        mode=Mode.MAINTENANCE,
        params=_params(retention_days=90),
        # the tables the jobs write
        vacuum_tables=(
            "daily_challenges",
            "user_challenge_progress",
            "challenge_templates",
            "user_gamification",
            "streak_days",
            "daily_metrics",
            "notifications",
            "stories",
            "story_views",
            "story_reactions",
            "typing_indicators",
            "user_presence",
            "user_reports",
            "moderation_actions",
            "users",
            "cron_job_logs",
        ),
        # monthly and up to 600 s: buffer an overlapping occurrence, catch up within a week
        overlap=Overlap.BUFFER_ONE,
        catchup_window=timedelta(days=7),
    ),
)

BY_NAME: MappingProxyType[str, Job] = MappingProxyType({job.name: job for job in JOBS})


class UnknownJobError(KeyError):
    """Raised for a job name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; say it plainly
        return str(self.args[0])


def get(name: str) -> Job:
    """Return the job called ``name`` or raise :class:`UnknownJobError` listing the valid names."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownJobError(f"unknown job {name!r}; the jobs are: {', '.join(BY_NAME)}") from None


def _validate() -> None:
    """Fail at import time on a malformed registry (caught by every test run)."""
    seen_functions: set[str] = set()
    for job in JOBS:
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
        assert timedelta(0) < job.catchup_window <= timedelta(days=31), f"{job.name}: catch-up window 1 s .. 31 days"
        assert timedelta(0) <= job.dependency_deadline <= timedelta(days=1), f"{job.name}: dependency deadline"
        assert job.pause_after_failures >= 1, f"{job.name}: pause_after_failures must be at least 1"
        for dep in job.depends_on:
            assert dep in BY_NAME, f"{job.name} depends on unknown job {dep!r}"
            assert BY_NAME[dep].completion_check, f"{dep} is depended on but has no completion_check"


_validate()
