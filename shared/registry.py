"""The one registry of scheduled jobs: everything reads :data:`JOBS` (the CDK app, the
handlers, the runner, the CLI, the README table, the tests). Adding a job: README, "Add a job".

What a job is (:class:`Job`, :class:`Mode`, :class:`Overlap`) is defined in :mod:`shared.job`
and re-exported here.
"""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

from shared.job import LAMBDA_GRACE_S, Job, Mode, Overlap, UnknownJobError, lambda_timeout_s, validate
from shared.job import params as _params

__all__ = [
    "BY_NAME",
    "JOBS",
    "LAMBDA_GRACE_S",
    "Job",
    "Mode",
    "Overlap",
    "UnknownJobError",
    "get",
    "lambda_timeout_s",
]

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
        # by user range, each batch its own transaction (~0.2 s at 1 M users); resumes when cut off
        mode=Mode.BATCHED,
        resumable=True,
        params=_params(batch_size=50_000),
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
        # by user range, each batch its own transaction; resumes when cut off
        mode=Mode.BATCHED,
        resumable=True,
        params=_params(batch_size=50_000),
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
        # by user range, each batch its own transaction (~0.4 s at 1 M users); resumes when cut off
        mode=Mode.BATCHED,
        resumable=True,
        params=_params(batch_size=20_000),
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


def get(name: str) -> Job:
    """Return the job called ``name`` or raise :class:`UnknownJobError` listing the valid names."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownJobError(f"unknown job {name!r}; the jobs are: {', '.join(BY_NAME)}") from None


validate(JOBS)
