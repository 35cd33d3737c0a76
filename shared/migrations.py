"""A small migration runner for two layers: versioned files applied once each (checksummed;
a changed applied file is refused), then the repeatable function files re-applied whenever
one changes. ``migrate(conn)`` applies the jobs layer; ``migrate(conn, discover_app())`` the
reference app schema (docs/adoption.md, "Two layers, applied separately"). Two deploys at
once: a transaction-scoped advisory lock (docs/reliability.md, "Migrations under load");
why not a library: README, "Dependencies, and why".
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from shared import contract
from shared.db import Conn, transaction
from shared.errors import MigrationError, translate

SQL_DIR = Path(__file__).parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "jobs" / "migrations"
FUNCTIONS_DIR = SQL_DIR / "jobs" / "functions"
APP_MIGRATIONS_DIR = SQL_DIR / "app" / "migrations"
APP_PREFIX = "app:"
# Recorded before the layers were split: (version, name) rows that stand for an app-layer file.
_APPLIED_BEFORE_THE_SPLIT = {"app:V001": ("V001", "app_schema")}
_VERSIONED = re.compile(r"^V(?P<version>\d{3,})__(?P<name>[a-z0-9_]+)\.sql$")
# An arbitrary constant: the key of the transaction-level advisory lock migrations take.
LOCK_KEY = 7_341_002_017

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text        PRIMARY KEY,  -- 'V001' or 'R:<file name>'
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: str  # 'V009' (jobs layer), 'app:V001' (reference app schema) or 'R:<file name>'
    name: str
    path: Path

    @property
    def repeatable(self) -> bool:
        return self.version.startswith("R:")

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(
    migrations_dir: Path = MIGRATIONS_DIR, functions_dir: Path | None = FUNCTIONS_DIR, *, prefix: str = ""
) -> list[Migration]:
    """All migrations in the order they apply: versioned by number, then repeatable by name.

    The default is the jobs layer; ``prefix`` namespaces another layer's versions."""
    versioned: list[Migration] = []
    for path in sorted(migrations_dir.glob("*.sql")):
        match = _VERSIONED.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named V###__lower_snake_name.sql")
        versioned.append(Migration(f"{prefix}V{match['version']}", match["name"], path))
    versions = [m.version for m in versioned]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number in {migrations_dir}")
    versioned.sort(key=lambda m: int(m.version.rsplit("V", 1)[1]))
    functions = [] if functions_dir is None else sorted(functions_dir.glob("*.sql"))
    repeatable = [Migration(f"R:{p.name}", p.stem, p) for p in functions]
    return versioned + repeatable


def discover_app(migrations_dir: Path = APP_MIGRATIONS_DIR) -> list[Migration]:
    """The reference app schema's migrations (``jobctl migrate --app-schema``)."""
    return discover(migrations_dir, None, prefix=APP_PREFIX)


def _applied(conn: Conn) -> dict[str, str]:
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    applied = {row["version"]: row["checksum"] for row in rows}
    recorded = {(row["version"], row["name"]) for row in rows}
    for version, old in _APPLIED_BEFORE_THE_SPLIT.items():
        if version not in applied and old in recorded:
            applied[version] = _BEFORE_THE_SPLIT
    return applied


_BEFORE_THE_SPLIT = "applied before the app and jobs layers were split"


def _lock(conn: Conn) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": LOCK_KEY})


def pending(conn: Conn, migrations: list[Migration] | None = None) -> list[Migration]:
    """The migrations :func:`migrate` would apply now (raises on a changed versioned file)."""
    migrations = discover() if migrations is None else migrations
    with transaction(conn):
        _lock(conn)
        conn.execute(_BOOTSTRAP)
        applied = _applied(conn)
    todo = []
    for m in migrations:
        recorded = applied.get(m.version)
        if recorded is None:
            todo.append(m)
        elif recorded != m.checksum and recorded != _BEFORE_THE_SPLIT:
            if not m.repeatable:
                raise MigrationError(
                    f"migration {m.path.name} was changed after it was applied; "
                    "restore it and put the change in a new migration"
                )
            todo.append(m)
    if any(m.repeatable for m in todo):
        # The function files are applied as a set, in name order: a later file may adjust
        # what an earlier one creates (zz_job_role_grants.sql makes the job functions run as
        # their owner, which CREATE OR REPLACE FUNCTION resets), so one change re-applies all.
        todo = [m for m in todo if not m.repeatable] + [m for m in migrations if m.repeatable]
    return todo


def migrate(conn: Conn, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations; return the file names applied (empty when up to date).

    Without ``migrations``, the jobs layer (``jobctl migrate``, the deploy): the app's tables
    are first checked against the contract (:mod:`shared.contract`); any gap raises
    :class:`shared.contract.ContractError` listing every one, before anything is changed.
    """
    if migrations is None:
        contract.require(conn)
        migrations = discover()
    done: list[str] = []
    for m in pending(conn, migrations):
        try:
            with transaction(conn):
                _lock(conn)
                # Re-check under the lock: a concurrent copy may have applied it meanwhile.
                # (Function files are re-applied as a set; doing that twice is harmless.)
                recorded = conn.execute(
                    "SELECT checksum FROM schema_migrations WHERE version = %(v)s", {"v": m.version}
                ).fetchone()
                if recorded and not m.repeatable:
                    continue
                conn.execute(m.sql.encode())  # bytes: no placeholder parsing; many statements
                conn.execute(
                    """INSERT INTO schema_migrations (version, name, checksum) VALUES (%(v)s, %(n)s, %(c)s)
                       ON CONFLICT (version) DO UPDATE SET checksum = excluded.checksum, applied_at = now()""",
                    {"v": m.version, "n": m.name, "c": m.checksum},
                )
        except MigrationError:
            raise
        except Exception as exc:
            raise MigrationError(
                f"migration {m.path.name} failed and was rolled back: {translate(exc, what='applying it')}"
            ) from None
        done.append(m.path.name)
    # Every time, even with nothing pending: Supabase's default privileges grant its API roles
    # every new object, so the jobs layer closes itself after each migration (shared/exposure.py).
    # The reference app schema's objects are the app's: applying that layer locks nothing.
    jobs_layer = [m.path for m in migrations if not m.version.startswith(APP_PREFIX)]
    if not jobs_layer:
        return done
    from shared.exposure import lock_down  # here: exposure reads this module's files

    try:
        with transaction(conn):
            _lock(conn)
            lock_down(conn, jobs_layer)
    except Exception as exc:
        raise MigrationError(f"closing the jobs layer to the public API failed: {translate(exc, what='it')}") from None
    return done
