"""Fixtures for the tests that need the real pg_cron (Debian's postgresql-15-cron).

pg_cron lives in one database of a server (``cron.database_name``), and on Supabase that is
the app's own database, so these tests run there instead of in a fresh copy of the template:
:func:`cron_url` empties it (every pg_cron job, every schema but ``cron``) before and after
each test. They skip with the reason where the server has no pg_cron; ``scripts/test-pg15``
(CI) preloads it and sets ``JOBS_REQUIRE_PG_CRON=1``, which turns that skip into a failure.

Import the fixtures into a test module: ``from tests.adoption.pgcron import cron_url``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from jobctl.databases import with_database
from shared import registry

#: Set by scripts/test-pg15: a missing pg_cron fails the run instead of skipping.
REQUIRE = "JOBS_REQUIRE_PG_CRON"


def skip_or_fail(reason: str) -> None:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason}; {REQUIRE}=1 says this run must test pg_cron", pytrace=False)
    pytest.skip(reason)


def _empty(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        # as Supabase creates it: in pg_catalog, so that emptying public leaves it be
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron WITH SCHEMA pg_catalog")
        conn.execute("SELECT cron.unschedule(jobid) FROM cron.job")
        conn.execute("DELETE FROM cron.job_run_details")
        schemas = conn.execute(
            """SELECT nspname FROM pg_namespace
                WHERE nspname NOT IN ('cron', 'information_schema') AND nspname NOT LIKE 'pg\\_%'"""
        ).fetchall()
        for (schema,) in schemas:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        # public as a new database has it on Postgres 15+
        conn.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
        conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")


@pytest.fixture
def cron_url(admin_url: str) -> Iterator[str]:
    """The URL of the database pg_cron runs in, emptied; skips (or fails) without pg_cron."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        libraries = admin.execute("SHOW shared_preload_libraries").fetchone()[0]  # type: ignore[index]
        if "pg_cron" not in libraries:
            skip_or_fail("pg_cron is not preloaded on this server (scripts/test-pg15 runs these tests with it)")
        dbname = admin.execute("SELECT current_setting('cron.database_name', true)").fetchone()[0]  # type: ignore[index]
    url = with_database(admin_url, dbname or "postgres")
    _empty(url)
    yield url
    _empty(url)


def schedule_guide_jobs(conn: psycopg.Connection) -> None:
    """The eleven jobs as the guide's setup script schedules them, and one of the app's own."""
    for job in registry.JOBS:
        conn.execute("SELECT cron.schedule(%s, %s, %s)", (job.name, job.cron, f"SELECT {job.sql_function}()"))
    conn.execute("SELECT cron.schedule('purge-old-drafts', '30 4 * * *', 'DELETE FROM notifications WHERE false')")


def cron_jobs(conn: psycopg.Connection) -> list[tuple]:
    """cron.job as a person would compare it: everything but the generated jobid."""
    return conn.execute(
        "SELECT jobname, schedule, command, database, username, active, nodename, nodeport FROM cron.job "
        "ORDER BY jobname NULLS FIRST, command"
    ).fetchall()


def apply_app_schema(url: str) -> None:
    """The reference app schema alone (``jobctl migrate --app-schema``), where the layers are split."""
    from shared import migrations
    from shared.db import connect

    discover_app = getattr(migrations, "discover_app", None)
    if discover_app is None:
        return  # before the split, the app schema is the jobs layer's first migration
    with connect(url) as conn:
        migrations.migrate(conn, discover_app())


def migrate_all(url: str) -> None:
    """The reference app schema and the jobs layer, as the test template has them."""
    from shared.db import connect
    from shared.migrations import migrate

    apply_app_schema(url)
    with connect(url) as conn:
        migrate(conn)
