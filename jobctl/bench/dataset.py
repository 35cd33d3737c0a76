"""The benchmark's data set: a seeded template database, built once and cloned for each run."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from jobctl.databases import create_database, with_database
from jobctl.embedded import ROOT
from shared import registry
from shared.cron import next_fire_times
from shared.errors import ConfigError

RUN_DATABASE = "bench_run"
#: What the data set takes on disk per million users (3.9 GB at 1 M, measured), rounded up.
DATASET_GB_PER_MILLION = 4.5
#: The build writes WAL and temporary files beside it; the run's clone takes as much again.
DISK_FACTOR = 2.5


def base_as_of(now: datetime) -> datetime:
    """The latest Sunday 00:00 UTC whose whole day has passed (every job's fire time is in the past)."""
    day = (now.astimezone(UTC) - timedelta(days=1)).date()
    sunday = day - timedelta(days=(day.weekday() + 1) % 7)
    return datetime(sunday.year, sunday.month, sunday.day, tzinfo=UTC)


def job_as_of(job: registry.Job, base: datetime) -> datetime:
    """The job's first fire time on ``base``'s day (00:00 for jobs that do not fire that day)."""
    first = next_fire_times(job.cron, base - timedelta(microseconds=1))[0]
    return first if first < base + timedelta(days=1) else base


def schema_key() -> str:
    """What the seeded rows depend on: the seed SQL and the schema it writes into (app and jobs tables)."""
    from shared.migrations import APP_MIGRATIONS_DIR, MIGRATIONS_DIR

    digest = hashlib.sha256()
    paths = [ROOT / "jobctl" / "sql" / "seed.sql", *sorted(APP_MIGRATIONS_DIR.glob("*.sql"))]
    paths.append(MIGRATIONS_DIR / "V009__jobs_layer_baseline.sql")  # the jobs' tables the seed fills
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def dataset_name(users: int, seed: int) -> str:
    return f"bench_{users}_{seed}_{schema_key()}"


@dataclass
class Dataset:
    name: str
    users: int
    seed: int
    as_of: datetime
    built: bool
    build_s: float
    migrations_applied: list[str] = field(default_factory=list)


def _comment(admin: psycopg.Connection, name: str) -> dict[str, Any] | None:
    """The data set's description (JSON in the database's comment), when it was completely built."""
    row = admin.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    if row is None or not row[0]:
        return None
    try:
        meta = json.loads(row[0])
    except ValueError:
        return None
    return meta if isinstance(meta, dict) and meta.get("complete") else None


def _set_template(admin: psycopg.Connection, name: str, *, template: bool) -> None:
    """A template takes no connections (so it can be cloned); a data set being updated is opened."""
    admin.execute(
        sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("false" if template else "true")
        )
    )
    if template:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name)))


def ensure_dataset(
    admin_url: str,
    *,
    users: int,
    seed: int,
    rebuild: bool = False,
    now: datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Dataset:
    """Build (or reuse) the template database of ``users`` users and return what it holds."""
    say = on_step or (lambda _: None)
    name = dataset_name(users, seed)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        meta = None if rebuild else _comment(admin, name)
    if meta is not None:
        return _reuse(admin_url, name, users, seed, datetime.fromisoformat(meta["as_of"]), say)
    check_disk(admin_url, users)
    return _build(admin_url, name, users, seed, base_as_of(now or datetime.now(UTC)), say)


def disk_needed_gb(users: int) -> float:
    """Free disk a new data set of ``users`` users needs: itself, its build's WAL, the run's clone."""
    return users / 1_000_000 * DATASET_GB_PER_MILLION * DISK_FACTOR


def check_disk(admin_url: str, users: int) -> None:
    """Refuse, in one line, to build a data set the server's disk cannot hold (checked when the
    server's data directory is on this machine, as the embedded server's is)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        row = admin.execute("SELECT current_setting('data_directory', true)").fetchone()
    path = Path(row[0]) if row and row[0] else None
    if path is not None and path.exists():  # else a server elsewhere: its disk is not visible from here
        check_free(path, users)


def check_free(path: Path, users: int) -> None:
    free_gb = shutil.disk_usage(path).free / 1e9
    need_gb = disk_needed_gb(users)
    if free_gb < need_gb:
        raise ConfigError(
            f"not enough disk for the {users:,}-user benchmark data set: it needs about {need_gb:.0f} GB free "
            f"on {path} (the data set, its build's WAL and the run's clone), {free_gb:.0f} GB are free; "
            "free some space (drop old bench_* databases) or pass a smaller --users"
        )


def _reuse(admin_url: str, name: str, users: int, seed: int, as_of: datetime, say: Callable[[str], None]) -> Dataset:
    """The data set as built, with the migrations added since applied to it."""
    from shared.db import connect
    from shared.migrations import migrate

    with psycopg.connect(admin_url, autocommit=True) as admin:
        _set_template(admin, name, template=False)
        try:
            with connect(with_database(admin_url, name)) as conn:
                applied = migrate(conn)
                if applied:
                    say(f"applied {len(applied)} migration(s) to {name}; analysing")
                    conn.execute("ANALYZE")
                _populate_leaderboards(conn, as_of, say)
        finally:
            _set_template(admin, name, template=True)
    return Dataset(name, users, seed, as_of, False, 0.0, applied)


def _build(admin_url: str, name: str, users: int, seed: int, as_of: datetime, say: Callable[[str], None]) -> Dataset:
    """Seed ``users`` users as of ``as_of`` into a new template database ``name``."""
    from jobctl.seed import seed as seed_app
    from shared.db import connect
    from shared.migrations import discover_app, migrate

    started = time.monotonic()
    url = create_database(admin_url, name, replace=True)
    with connect(url) as conn:
        applied = migrate(conn, discover_app()) + migrate(conn)  # the reference app, then the jobs layer
        say(f"seeding {users:,} users as of {as_of.isoformat()} into {name} (~4 min per million)")
        seed_app(
            conn,  # type: ignore[arg-type]  # seed reads rows either way (dict or tuple)
            users=users,
            as_of=as_of,
            seed=seed,
            on_step=lambda step, rows, s: say(
                f"seed {step}: {rows:,} rows in {s:.1f} s ({time.monotonic() - started:.0f} s since the start)"
            ),
        )
        _populate_leaderboards(conn, as_of, say)
        say("VACUUM (ANALYZE): the visibility map and statistics a live database keeps")
        conn.execute("VACUUM (ANALYZE)")
    build_s = time.monotonic() - started
    meta = {"complete": True, "users": users, "seed": seed, "as_of": as_of.isoformat()}
    meta |= {"build_s": round(build_s, 1), "schema": schema_key()}
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(json.dumps(meta)))
        )
        _set_template(admin, name, template=True)
    return Dataset(name, users, seed, as_of, True, build_s, applied)


def _populate_leaderboards(conn: psycopg.Connection[Any], as_of: datetime, say: Callable[[str], None]) -> None:
    """The boards as the previous hourly run left them (the seed leaves them never populated,
    and update-leaderboards then populates them plainly instead of refreshing them concurrently)."""
    unpopulated = conn.execute(
        "SELECT count(*) AS n FROM pg_class WHERE relkind = 'm' AND NOT relispopulated"
    ).fetchone()
    if unpopulated and unpopulated["n"]:
        say("populating the leaderboards as of the previous hour")
        with conn.transaction():
            conn.execute("SELECT job_update_leaderboards(%s)", (as_of - timedelta(hours=1),))


def clone(admin_url: str, template: str, target: str = RUN_DATABASE) -> float:
    """Replace ``target`` with a copy of ``template``; return the seconds it took."""
    started = time.monotonic()
    create_database(admin_url, target, template=template, file_copy=True, replace=True)
    return time.monotonic() - started
