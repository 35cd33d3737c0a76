"""The contract between the jobs layer and the app's own tables (:data:`CONTRACT`), and the
check of a live database against it (docs/adoption.md, "The contract, checked before any
change"). ``jobctl migrate`` and the deploy call :func:`require` before changing anything;
``jobctl doctor`` calls :func:`check`. That API (check, Gap, describe, require) is stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import MigrationError

#: What the jobs need, one line per column: ``table.column  kind  origin  jobs``.
#:   kind:   key (users.id: an integer, uuid or text), user (refers to users.id: the same
#:           kind as users.id), id (another table's key), int, text, bool, timestamptz,
#:           date, jsonb
#:   origin: app (the app must have it), added (the jobs layer adds it when missing; one of
#:           another type is a gap), jobs (a table the jobs layer creates; an existing one,
#:           from an older install, must fit too)
#:   jobs:   the registry's job names, comma-separated; "*" for every job; "-" for the
#:           jobs layer itself (its triggers and functions)
CONTRACT_TABLE = """
users.id                              key          app    *
users.username                        text         app    update-leaderboards
users.learning_language               text         app    update-leaderboards
users.account_status                  text         app    *
users.created_at                      timestamptz  app    calculate-daily-metrics,cleanup-inactive-accounts
users.last_active_at                  timestamptz  app    update-user-streaks,cleanup-inactive-accounts
users.status_changed_at               timestamptz  added  process-moderation-queue,cleanup-inactive-accounts
users.is_staff                        bool         added  process-moderation-queue
users.reminders_enabled               bool         added  send-daily-reminders
users.weekly_report_opt_out           bool         added  send-weekly-reports
user_gamification.user_id             user         app    update-user-streaks,send-daily-reminders,send-weekly-reports,update-leaderboards
user_gamification.current_streak      int          app    update-user-streaks,send-daily-reminders,send-weekly-reports
user_gamification.longest_streak      int          app    update-user-streaks
user_gamification.previous_streak_value int        added  update-user-streaks
user_gamification.total_xp            int          app    update-leaderboards
user_gamification.updated_at          timestamptz  app    update-user-streaks
user_gamification.streak_day          date         added  update-user-streaks
user_gamification.previous_longest_streak int      added  update-user-streaks
user_gamification.week_end_day        date         added  update-user-streaks,send-weekly-reports
user_gamification.week_end_streak     int          added  update-user-streaks,send-weekly-reports
challenge_templates.id                id           app    reset-daily-challenges
challenge_templates.title             text         app    reset-daily-challenges
challenge_templates.is_enabled        bool         app    reset-daily-challenges
challenge_templates.last_used_on      date         added  reset-daily-challenges
daily_challenges.id                   id           app    reset-daily-challenges
daily_challenges.template_id          id           app    reset-daily-challenges
daily_challenges.title                text         app    reset-daily-challenges
daily_challenges.challenge_date       date         app    reset-daily-challenges
daily_challenges.status               text         app    reset-daily-challenges
daily_challenges.created_at           timestamptz  app    reset-daily-challenges
daily_challenges.activated_at         timestamptz  added  reset-daily-challenges
daily_challenges.archived_at          timestamptz  added  reset-daily-challenges
daily_challenges.auto_created         bool         added  reset-daily-challenges
user_challenge_progress.user_id       user         app    send-weekly-reports
user_challenge_progress.challenge_id  id           app    reset-daily-challenges
user_challenge_progress.status        text         app    reset-daily-challenges,calculate-daily-metrics,send-weekly-reports
user_challenge_progress.completed_at  timestamptz  app    calculate-daily-metrics,send-weekly-reports
user_challenge_progress.closed_at     timestamptz  added  reset-daily-challenges
messages.sender_id                    user         app    send-weekly-reports
messages.recipient_id                 user         app    send-weekly-reports
messages.created_at                   timestamptz  app    calculate-daily-metrics,send-weekly-reports
messages.is_deleted                   bool         app    calculate-daily-metrics,send-weekly-reports
stories.id                            id           app    cleanup-expired-stories
stories.created_at                    timestamptz  app    cleanup-expired-stories
story_views.story_id                  id           app    cleanup-expired-stories
story_reactions.story_id              id           app    cleanup-expired-stories
typing_indicators.expires_at          timestamptz  app    cleanup-expired-sessions
user_presence.is_online               bool         app    cleanup-expired-sessions
user_presence.last_heartbeat_at       timestamptz  app    cleanup-expired-sessions
user_presence.went_offline_at         timestamptz  added  cleanup-expired-sessions
user_reports.id                       id           app    process-moderation-queue
user_reports.reporter_id              user         app    process-moderation-queue
user_reports.reported_user_id         user         app    process-moderation-queue
user_reports.status                   text         app    process-moderation-queue
user_reports.created_at               timestamptz  app    process-moderation-queue,calculate-daily-metrics
user_reports.resolved_at              timestamptz  added  process-moderation-queue
user_reports.moderation_action_id     int          added  process-moderation-queue
notifications.user_id                 user         app    send-daily-reminders,send-weekly-reports
notifications.kind                    text         app    send-daily-reminders,send-weekly-reports
notifications.payload                 jsonb        app    send-daily-reminders,send-weekly-reports
notifications.created_at              timestamptz  app    send-daily-reminders,send-weekly-reports
notifications.dedup_key               text         added  send-daily-reminders,send-weekly-reports
user_daily_activity.user_id           user         jobs   update-user-streaks,calculate-daily-metrics,send-daily-reminders,send-weekly-reports,update-leaderboards
user_daily_activity.activity_date     date         jobs   update-user-streaks,calculate-daily-metrics,send-daily-reminders,send-weekly-reports,update-leaderboards
user_daily_activity.first_active_at   timestamptz  jobs   send-daily-reminders
user_daily_activity.last_active_at    timestamptz  jobs   -
user_daily_activity.xp_earned         int          jobs   send-weekly-reports,update-leaderboards
user_daily_activity.stories_posted    int          jobs   calculate-daily-metrics
moderation_actions.id                 int          jobs   process-moderation-queue
moderation_actions.user_id            user         jobs   process-moderation-queue,calculate-daily-metrics
moderation_actions.action             text         jobs   process-moderation-queue,calculate-daily-metrics
moderation_actions.created_at         timestamptz  jobs   process-moderation-queue,calculate-daily-metrics
daily_metrics.metric_date             date         jobs   calculate-daily-metrics
streak_days.day                       date         jobs   update-user-streaks,calculate-daily-metrics
cron_job_logs.job_name                text         jobs   *
cron_job_logs.status                  text         jobs   *
cron_job_logs.started_at              timestamp    jobs   *
"""  # noqa: E501 - one line per column

#: App tables the jobs layer alters (adds columns, constraints, indexes or triggers): the
#: migrating user must own them (or be a member of their owner).
ALTERED_TABLES = (
    "users",
    "user_gamification",
    "challenge_templates",
    "daily_challenges",
    "user_challenge_progress",
    "messages",
    "user_presence",
    "user_reports",
    "notifications",
)

#: Type names (format_type of the column's base type) each kind accepts.
_INTEGERS = ("smallint", "integer", "bigint")
_TEXTS = ("text", "character varying", "character", "citext", "name")
_KINDS: dict[str, tuple[str, ...]] = {
    "int": (*_INTEGERS, "numeric"),
    "text": _TEXTS,
    "bool": ("boolean",),
    "timestamptz": ("timestamp with time zone",),
    "timestamp": ("timestamp with time zone", "timestamp without time zone"),
    "date": ("date",),
    "jsonb": ("jsonb", "json"),
    "key": (*_INTEGERS, "uuid", *_TEXTS),
    "id": (*_INTEGERS, "uuid", *_TEXTS),
}
_FAMILY = {**dict.fromkeys(_INTEGERS, "integer"), "uuid": "uuid", **dict.fromkeys(_TEXTS, "text")}


@dataclass(frozen=True)
class Need:
    table: str
    column: str
    kind: str
    origin: str  # app, added, jobs
    jobs: tuple[str, ...]


def _parse(text: str) -> tuple[Need, ...]:
    from shared import registry

    everyone = tuple(job.name for job in registry.JOBS)
    needs = []
    for line in text.strip().splitlines():
        name, kind, origin, jobs = line.split()
        table, column = name.split(".")
        assert kind in _KINDS or kind == "user", f"contract: unknown kind {kind!r} for {name}"
        assert origin in ("app", "added", "jobs"), f"contract: unknown origin {origin!r} for {name}"
        names = everyone if jobs == "*" else () if jobs == "-" else tuple(jobs.split(","))
        assert all(registry.get(j) for j in names), f"contract: unknown job in {name}"
        needs.append(Need(table, column, kind, origin, names))
    return tuple(needs)


#: The contract, parsed: every column a job needs.
CONTRACT: tuple[Need, ...] = _parse(CONTRACT_TABLE)


@dataclass(frozen=True)
class Gap:
    """One way the live database falls short of the contract."""

    table: str
    column: str | None  # None: the table as a whole
    problem: str
    jobs: tuple[str, ...] = ()

    def __str__(self) -> str:
        what = f"{self.table}.{self.column}" if self.column else self.table
        needed = f" (needed by {', '.join(self.jobs)})" if self.jobs else ""
        return f"{what}: {self.problem}{needed}"


class ContractError(MigrationError):
    """The database does not meet the contract; nothing was changed."""

    def __init__(self, gaps: list[Gap]) -> None:
        super().__init__(describe(gaps))
        self.gaps = gaps


_COLUMNS = """
SELECT c.relname AS table, a.attname AS column,
       format_type(coalesce(nullif(t.typbasetype, 0), a.atttypid), NULL) AS type,
       bt.typtype = 'e' AS is_enum
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
  JOIN pg_type bt ON bt.oid = coalesce(nullif(t.typbasetype, 0), a.atttypid)
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname = ANY(%(tables)s)
"""

_TABLES = """
SELECT c.relname AS table, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       pg_has_role(current_user, c.relowner, 'USAGE') AS owned,
       pg_get_userbyid(c.relowner) AS owner,
       (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) AS bypasses_rls,
       current_user AS me
  FROM pg_class c
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname = ANY(%(tables)s)
"""


def _type_fits(kind: str, type_name: str, is_enum: bool, user_type: str | None) -> bool:
    if kind == "user":
        return user_type is not None and _FAMILY.get(type_name, type_name) == _FAMILY.get(user_type, user_type)
    if kind == "text" and is_enum:
        return True
    return type_name in _KINDS[kind]


_READABLE = {
    "key": "an integer, uuid or text key",
    "id": "an integer, uuid or text key",
    "int": "an integer or numeric",
    "text": "text (or varchar, or an enum)",
    "bool": "boolean",
    "timestamptz": "timestamp with time zone",
    "timestamp": "a timestamp",
    "date": "date",
    "jsonb": "jsonb or json",
}


def _needs_of(kind: str, user_type: str | None) -> str:
    if kind == "user":
        return f"the type of users.id ({user_type})"
    return _READABLE[kind]


def check(conn: Any) -> list[Gap]:
    """Every gap between the contract and the database ``conn`` points at (read-only).

    The connection's user is the one that would migrate: the job functions run as that user
    (SECURITY DEFINER), so row-level security and ownership are judged for it."""
    tables = sorted({n.table for n in CONTRACT})
    columns = {(r["table"], r["column"]): r for r in conn.execute(_COLUMNS, {"tables": tables}).fetchall()}
    present = {r["table"]: r for r in conn.execute(_TABLES, {"tables": tables}).fetchall()}
    user_type = columns[("users", "id")]["type"] if ("users", "id") in columns else None
    gaps: list[Gap] = []

    def jobs_of(needs: list[Need]) -> tuple[str, ...]:
        from shared import registry

        names = {j for n in needs for j in n.jobs}
        return tuple(job.name for job in registry.JOBS if job.name in names)

    for table in dict.fromkeys(n.table for n in CONTRACT):
        needs = [n for n in CONTRACT if n.table == table]
        origin = "jobs" if all(n.origin == "jobs" for n in needs) else "app"
        if table not in present:
            if origin == "app":
                gaps.append(Gap(table, None, "table missing", jobs_of(needs)))
            continue
        for need in needs:
            found = columns.get((table, need.column))
            if found is None:
                if need.origin == "app":
                    gaps.append(Gap(table, need.column, "column missing", need.jobs))
                elif need.origin == "jobs":
                    gaps.append(Gap(table, need.column, "column missing from the existing table", need.jobs))
            elif not _type_fits(need.kind, found["type"], found["is_enum"], user_type):
                gaps.append(
                    Gap(table, need.column, f"type {found['type']}, needs {_needs_of(need.kind, user_type)}", need.jobs)
                )
        info = present[table]
        if origin == "app" and info["rls"] and not info["bypasses_rls"] and (info["forced"] or not info["owned"]):
            why = "FORCE ROW LEVEL SECURITY" if info["owned"] else f"owned by {info['owner']}"
            gaps.append(
                Gap(
                    table,
                    None,
                    f"row-level security would hide rows from the job functions, which run as {info['me']} "
                    f"({why}): migrate as the table's owner (without FORCE), or grant {info['me']} BYPASSRLS",
                    jobs_of(needs),
                )
            )
        if table in ALTERED_TABLES and not info["owned"]:
            gaps.append(
                Gap(
                    table,
                    None,
                    f"owned by {info['owner']}: the jobs layer adds columns, indexes or triggers to it, so "
                    f"migrate as its owner (or a member of {info['owner']})",
                )
            )
    return gaps


def describe(gaps: list[Gap]) -> str:
    """One message listing every gap (for ``jobctl migrate``, the deploy and ``jobctl doctor``)."""
    lines = [
        f"the database does not meet the jobs' contract (docs/adoption.md): {len(gaps)} gap(s); nothing was changed"
    ]
    lines += [f"  - {gap}" for gap in gaps]
    if any(g.table == "users" and g.column is None and g.problem == "table missing" for g in gaps):
        lines.append(
            "  no app tables here: for a new database apply the reference app schema first "
            "(jobctl migrate --app-schema)"
        )
    return "\n".join(lines)


def require(conn: Any) -> None:
    """Raise :class:`ContractError` listing every gap, if there is any."""
    gaps = check(conn)
    if gaps:
        raise ContractError(gaps)
