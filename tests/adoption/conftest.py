"""Fixtures for adopting existing databases: built from SQL files, then migrated by today's code."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.reliability.conftest import runner_on  # noqa: F401 - the runner's connection, for these tests too

HERE = Path(__file__).resolve().parent
#: shared/sql/jobs/{migrations,functions} as they were at c1d95e9 (before the app and jobs
#: layers were split): what a database migrated by that version holds.
LEGACY = HERE / "legacy_c1d95e9"
GUIDE_ERA_APP = HERE / "guide_era_app.sql"
GUIDE_ERA_JOBS = HERE / "guide_era_jobs.sql"


def apply_sql_file(conn: psycopg.Connection, path: Path) -> None:
    """Run a whole SQL script in one transaction."""
    with conn.transaction():
        conn.execute(path.read_bytes())
