"""A realistic synthetic app for demos, tests and benchmarks, generated in SQL (docs/seed.md;
its timings: docs/performance.md). Every step is one set-based statement
(``jobctl/sql/seed.sql``), all in one transaction. Randomness is a hash of (row key, seed,
salt), never ``random()``, so the same (users, as_of, seed) gives identical rows.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from shared.errors import JobsError

log = logging.getLogger(__name__)

SQL_FILE = Path(__file__).parent / "sql" / "seed.sql"
_STEP = re.compile(r"^-- step: (?P<name>[a-z_]+)\s*$", re.MULTILINE)

#: Messages per user over the 30 days of activity (10,000,000 at 1,000,000 users).
MESSAGES_PER_USER = 10
MIN_USERS = 10

#: The application tables the seed fills (and ``replace=True`` empties), parents first.
SEEDED_TABLES: tuple[str, ...] = (
    "users",
    "user_daily_activity",
    "user_gamification",
    "streak_days",
    "messages",
    "stories",
    "story_views",
    "story_reactions",
    "moderation_actions",
    "user_reports",
    "challenge_templates",
    "daily_challenges",
    "user_challenge_progress",
    "user_presence",
    "typing_indicators",
)
#: Emptied by ``replace=True`` too: what the jobs wrote about the previous data set.
_DERIVED_TABLES: tuple[str, ...] = ("notifications", "daily_metrics")
#: Tables whose identity sequence must continue after the explicit ids the seed writes.
_EXPLICIT_IDS: tuple[str, ...] = (
    "users",
    "stories",
    "moderation_actions",
    "user_reports",
    "challenge_templates",
    "daily_challenges",
)

# rnd(key, salt): uniform in [0, 1) from 52 bits of a seeded hash; inlined by the planner.
_RND = """
CREATE FUNCTION pg_temp.rnd(k bigint, salt integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (hashint8extended(k, {base}::bigint + salt) & 4503599627370495)::float8 / 4503599627370496.0 $$
"""


class SeedError(JobsError):
    """The seed cannot run as asked (non-empty database, bad arguments)."""


def _steps() -> list[tuple[str, str]]:
    text = SQL_FILE.read_text()
    marks = list(_STEP.finditer(text))
    return [
        (m.group("name"), text[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip())
        for i, m in enumerate(marks)
    ]


def clock_params(as_of: datetime) -> dict[str, Any]:
    """The dates the seed derives from ``as_of`` (state just before the jobs fire at as_of)."""
    as_of = as_of.astimezone(UTC)
    today = as_of.date()
    just_before = as_of - timedelta(microseconds=1)
    last_reset = just_before.date()  # the day of the last 00:00 run before as_of
    # the last "0 2 1 * *" (cleanup-inactive-accounts) strictly before as_of
    t = as_of - timedelta(hours=2, microseconds=1)
    prev_inactive = datetime(t.year, t.month, 1, 2, tzinfo=UTC)
    return {
        "as_of": as_of,
        "today": today,
        "w": today - timedelta(days=30),
        "p_day": last_reset - timedelta(days=1),
        "last_reset": last_reset,
        "prev_inactive": prev_inactive,
    }


def seed(
    conn: psycopg.Connection,
    *,
    users: int,
    as_of: datetime,
    seed: int = 42,
    replace: bool = False,
    on_step: Callable[[str, int, float], None] | None = None,
) -> dict[str, int]:
    """Fill the database with a synthetic app of ``users`` users as it is just before ``as_of``.

    Refuses a database that already has users unless ``replace`` (then the app tables are
    emptied first, in the same transaction). ``on_step(name, rows, seconds)`` reports
    progress. Returns the row count of every table seeded.
    """
    _check_arguments(users, as_of, seed)
    params: dict[str, Any] = {**clock_params(as_of), "n": users}
    counts: dict[str, int] = {}
    started = time.perf_counter()
    with conn.transaction():
        _prepare(conn, seed, replace)
        for name, statement in _steps():
            t0 = time.perf_counter()
            _step_params(conn, name, params, users)
            cur = conn.execute(statement, params)  # type: ignore[arg-type]  # our own SQL file
            rows = max(cur.rowcount, 0)
            if name in SEEDED_TABLES:
                counts[name] = rows
            elapsed = time.perf_counter() - t0
            log.info("seed step %s: %d rows in %.2f s", name, rows, elapsed)
            if on_step:
                on_step(name, rows, elapsed)
        _finish(conn, on_step)
    log.info("seeded %d users in %.1f s", users, time.perf_counter() - started)
    return counts


def _check_arguments(users: int, as_of: datetime, seed: int) -> None:
    if users < MIN_USERS:
        raise SeedError(f"seed needs at least {MIN_USERS} users (got {users})")
    if as_of.tzinfo is None:
        raise SeedError("as_of must be timezone-aware (UTC)")
    if not 0 <= seed < 2**40:
        raise SeedError("seed must be a non-negative integer below 2**40")


def _prepare(conn: psycopg.Connection, seed: int, replace: bool) -> None:
    """The transaction's settings, an empty app (or a refusal), and the seeded random function."""
    conn.execute("SET LOCAL synchronous_commit = off")
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    conn.execute("SET LOCAL work_mem = '256MB'")
    if _scalar(conn, "SELECT EXISTS (SELECT 1 FROM users)"):
        if not replace:
            raise SeedError(
                "the database already has users: seed only an empty migrated database "
                "(or pass replace=True / --replace to empty the app tables first)"
            )
        conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in SEEDED_TABLES + _DERIVED_TABLES)
            )
        )
    _skip_fk_checks_if_allowed(conn)
    conn.execute("DROP FUNCTION IF EXISTS pg_temp.rnd(bigint, integer)")
    conn.execute(_RND.format(base=seed * 1000))


def _step_params(conn: psycopg.Connection, name: str, params: dict[str, Any], users: int) -> None:
    """The parameters a step needs from the rows the earlier steps wrote."""
    if name == "user_daily_activity":
        planned = _count(conn, "SELECT count(*) AS n FROM seed_activity")
        params["msg_mean"] = MESSAGES_PER_USER * users / max(planned, 1)
    if name == "stories":
        params["recent"] = _count(conn, "SELECT count(*) AS n FROM seed_recent")
        if params["recent"] == 0:  # nobody active lately (tiny data sets): anyone may post
            conn.execute(
                "INSERT INTO seed_recent SELECT row_number() OVER (ORDER BY id), id, created_at "
                "FROM users WHERE account_status = 'active'"
            )
            params["recent"] = _count(conn, "SELECT count(*) AS n FROM seed_recent")
    if name == "user_reports":
        params["reports"] = max(1, users // 10)
        params["banned"] = _count(conn, "SELECT count(*) AS n FROM seed_banned")
        # ~5 reports per troublemaker on average (skewed), 35% of all reports
        params["troublemakers"] = max(1, round(params["reports"] * 0.35 / 5))


def _finish(conn: psycopg.Connection, on_step: Callable[[str, int, float], None] | None) -> None:
    """Sequences past the explicit ids, the random function dropped, the seeded tables analysed."""
    for table in _EXPLICIT_IDS:
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({t}, 'id'), (SELECT coalesce(max(id), 0) + 1 FROM {i}), false)"
            ).format(t=sql.Literal(table), i=sql.Identifier(table))
        )
    conn.execute("DROP FUNCTION pg_temp.rnd(bigint, integer)")
    t0 = time.perf_counter()
    for table in SEEDED_TABLES:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    if on_step:
        on_step("analyze", 0, time.perf_counter() - t0)


def _scalar(conn: psycopg.Connection, query: str) -> Any:
    """The first column of the first row (whatever the connection's row factory)."""
    row: Any = conn.execute(query).fetchone()
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def _count(conn: psycopg.Connection, query: str) -> int:
    return int(_scalar(conn, query))


def _skip_fk_checks_if_allowed(conn: psycopg.Connection) -> None:
    """Skip per-row foreign-key triggers during the load when we may (superuser).

    The seed writes consistent rows by construction (tests check it); checking ~20 million
    references row by row would double the load time. Without the privilege (a managed
    database) the checks simply run. Transaction-local: ends with the seed's transaction.
    """
    if _scalar(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        conn.execute("SET LOCAL session_replication_role = replica")


def default_as_of(today: date | None = None) -> datetime:
    """A sensible default: the coming midnight UTC (the daily jobs' time), as a tz-aware datetime."""
    day = today or datetime.now(UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def seed_with_progress(conn: Any, *, users: int, as_of: datetime, seed_value: int) -> tuple[dict[str, int], float]:
    """:func:`seed` under a spinner on stderr; the row counts and the seconds it took."""
    from jobctl import output
    from shared.errors import translate
    from shared.events import iso

    started = time.monotonic()
    with output.stderr().status(f"Seeding {users:,} users (as of {iso(as_of)}) ..."):
        try:
            counts = seed(conn, users=users, as_of=as_of, seed=seed_value)
        except Exception as exc:
            raise translate(exc, what=f"seeding {users:,} users") from None
    return counts, time.monotonic() - started
