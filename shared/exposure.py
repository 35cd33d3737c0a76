"""What of the jobs layer Supabase's public API can reach (:func:`exposed_objects`), and the
lockdown that closes it after every migration (:func:`lock_down`): docs/reliability.md,
"What the public API can reach". Which objects are the jobs layer's: :func:`jobs_layer_names`;
left alone: :data:`APP_FACING` and the reference app schema (:data:`APP_SCHEMA_FILES`).
SQL: ``shared/sql/jobs/lockdown.sql`` and ``shared/sql/jobs/exposure.sql``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from shared.db import Conn

SQL_DIR = Path(__file__).parent / "sql" / "jobs"
LOCKDOWN_SQL = SQL_DIR / "lockdown.sql"
EXPOSURE_SQL = SQL_DIR / "exposure.sql"

#: Supabase's API roles: anon (the anon key every client ships), authenticated (a signed-in
#: user), service_role (the secret key). The jobs layer grants none of them anything.
API_ROLES = ("anon", "authenticated", "service_role")
#: The roles a public client can act as; :func:`exposed_objects` checks these.
PUBLIC_ROLES = ("anon", "authenticated")
#: The jobs' own role (V004__job_role.sql); its grants are left as they are.
JOB_ROLE = "scheduled_jobs_runner"

#: Jobs-layer SQL that the app reads; documented in docs/reliability.md, never locked.
APP_FACING = frozenset(
    {
        "mv_global_leaderboard",
        "mv_weekly_leaderboard",
        "mv_language_leaderboard",
        "leaderboard_rank",
        # the app's write path and what it and leaderboard_rank() read and write; the app's tables
        # before the layers were split (shared/sql/jobs/migrations/V009__jobs_layer_baseline.sql)
        "record_activity",
        "user_daily_activity",
        "moderation_actions",
    }
)
#: The reference app schema (the demo's and the tests' app): its objects are the app's.
APP_SCHEMA_FILES = frozenset({"V001__app_schema.sql"})
#: What the reference app schema creates that is the jobs' own state, not the app's.
JOB_STATE_IN_APP_SCHEMA = frozenset({"streak_days", "leaderboard_period", "daily_metrics"})

_COMMENT = re.compile(r"--[^\n]*")
_CREATED = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?"
    r"(?:TABLE|VIEW|MATERIALIZED\s+VIEW|FUNCTION|PROCEDURE|SEQUENCE)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?(?:public\.)?\"?([A-Za-z_][A-Za-z0-9_]*)",
    re.IGNORECASE,
)
_RENAMED = re.compile(r"\bRENAME\s+TO\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def created_names(sql: str) -> set[str]:
    """The names of the tables, views, sequences and functions ``sql`` creates or renames to."""
    text = _COMMENT.sub("", sql)
    return {n.lower() for n in _CREATED.findall(text) + _RENAMED.findall(text)}


def jobs_layer_names(paths: Iterable[Path] | None = None) -> list[str]:
    """The jobs layer's object names, from the SQL files the migration runner applies.

    ``paths`` defaults to every file :func:`shared.migrations.discover` finds.
    """
    from shared import migrations  # here: migrations calls lock_down, this module reads its files

    if paths is None:
        paths = [m.path for m in migrations.discover()]
    names = created_names(migrations._BOOTSTRAP)
    for path in paths:
        found = created_names(path.read_text(encoding="utf-8"))
        names |= found & JOB_STATE_IN_APP_SCHEMA if path.name in APP_SCHEMA_FILES else found
    return sorted(names - APP_FACING)


def lock_down(conn: Conn, paths: Iterable[Path] | None = None) -> list[str]:
    """Close every jobs-layer object to PUBLIC and Supabase's API roles; return the statements run.

    Idempotent, and run by ``migrate`` after every migration (inside its transaction and lock).
    """
    params = {"names": jobs_layer_names(paths), "roles": list(API_ROLES), "job_role": JOB_ROLE}
    statements = [r["statement"] for r in conn.execute(LOCKDOWN_SQL.read_text(encoding="utf-8"), params).fetchall()]
    for statement in statements:
        conn.execute(statement.encode())  # built by lockdown.sql from catalog names (quoted there)
    return statements


@dataclass(frozen=True)
class Exposure:
    """One jobs-layer object a public API role can reach (or a table whose row-level security is off)."""

    kind: str
    """table, view, materialized view, sequence, function, procedure, or 'row-level security off'."""
    name: str
    """The object as Postgres names it (a function with its argument types)."""
    role: str | None
    """anon, authenticated (or public where neither role exists); None for row-level security."""
    privileges: tuple[str, ...]
    fix: str
    """A statement that closes it (run as the owner). ``jobctl migrate`` closes everything at once."""


def exposed_objects(conn: Conn, paths: Iterable[Path] | None = None) -> list[Exposure]:
    """Every jobs-layer object that ``anon`` or ``authenticated`` can reach on this database.

    Read-only. Empty means the public API (PostgREST, with the anon key or a user's token)
    can read, write or call nothing of the jobs layer. Each entry carries the statement that
    closes it; ``jobctl migrate`` (which runs :func:`lock_down`) closes them all. Where
    neither role exists (plain Postgres, RDS) it checks ``PUBLIC`` instead, i.e. any role.
    A jobs-layer table with row-level security off is reported too (role None): its
    second line of defence is missing.
    """
    present = {r["rolname"] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
    roles = [r for r in PUBLIC_ROLES if r in present] or ["public"]
    params = {"names": jobs_layer_names(paths), "roles": roles}
    rows = conn.execute(EXPOSURE_SQL.read_text(encoding="utf-8"), params).fetchall()
    return [Exposure(r["kind"], r["name"], r["role"], tuple(r["privileges"]), r["fix"]) for r in rows]
