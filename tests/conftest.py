"""Test fixtures: a real Postgres, a migrated template database per session, a fresh copy per test;
Powertools' module state reset around every test.

``TEST_DATABASE_URL`` points the suite at another server (any Postgres 15+); without it the
suite starts the project's embedded server in ``.pgdata-test/``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobctl.databases import create_database, drop_database, with_database
from shared.db import close_quietly, connect
from shared.migrations import discover_app, migrate

ROOT = Path(__file__).resolve().parent.parent
TEST_PGDATA = ROOT / ".pgdata-test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", default=False, help="run the long chaos soak")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="long soak: run with --soak (make soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def powertools_state() -> Iterator[None]:
    """Each test starts as a fresh Lambda would: no buffered metrics, cold start, empty parameter caches."""
    from aws_lambda_powertools.logging import logger as powertools_logger
    from aws_lambda_powertools.metrics.provider import cold_start
    from aws_lambda_powertools.utilities import parameters

    from shared.observability import metrics

    def clear() -> None:
        metrics.clear_metrics()
        cold_start.reset_cold_start_flag()
        powertools_logger.is_cold_start = True
        parameters.clear_caches()

    clear()
    yield
    clear()


@pytest.fixture(scope="session")
def embedded_server():
    """The embedded server (None when TEST_DATABASE_URL names another server)."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    from jobctl.embedded import start

    yield start(TEST_PGDATA)


@pytest.fixture(scope="session")
def admin_url(embedded_server) -> str:
    if embedded_server is None:
        return os.environ["TEST_DATABASE_URL"]
    return embedded_server.url("postgres")


@pytest.fixture(scope="session")
def template_db(admin_url: str) -> Iterator[str]:
    """A database migrated once per session (reference app schema, then the jobs layer), copied for every test."""
    name = f"jobs_template_{os.getpid()}"
    conn = connect(create_database(admin_url, name, replace=True))
    try:
        migrate(conn, discover_app())
        migrate(conn)
    finally:
        conn.close()
    yield name
    drop_database(admin_url, name)


def create_database_from_template(admin_url: str, template: str) -> str:
    """A new copy of ``template`` under a fresh name; returns the name."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    create_database(admin_url, name, template=template)
    return name


def pooled(url: str) -> str:
    """``url`` through the pooler named by ``TEST_POOLER_URL`` (host and port), when set.

    scripts/test-pg15 sets it to Debian's pgbouncer in transaction mode, as Supabase's port
    6543 is, and runs the jobs' and the runner's tests through it.
    """
    pooler = os.environ.get("TEST_POOLER_URL")
    if not pooler:
        return url
    return make_conninfo(url, **conninfo_to_dict(pooler))


@pytest.fixture
def db_url(admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated, empty database for this test (through the pooler, if TEST_POOLER_URL)."""
    name = create_database_from_template(admin_url, template_db)
    yield pooled(with_database(admin_url, name))
    drop_database(admin_url, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection (dict rows, no prepared statements) to the test's database."""
    connection = connect(db_url)
    yield connection
    close_quietly(connection)


@pytest.fixture
def empty_db_url(admin_url: str) -> Iterator[str]:
    """A fresh database with no migrations applied."""
    name = f"e_{uuid.uuid4().hex[:16]}"
    yield create_database(admin_url, name)
    drop_database(admin_url, name)
