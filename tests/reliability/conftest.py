"""Fixtures for the reliability tests: a login user in the job role, the runner pointed at a database."""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.db import reset_connection
from shared.naming import SERVICE

JOB_ROLE = "scheduled_jobs_runner"
#: Recognizable, so a test can look for it in every output.
JOB_USER_PASSWORD = "Rel1ab-JobUser-S3cret-pw"


def as_user(url: str, user: str, password: str) -> str:
    """``url`` with another user and password."""
    params = conninfo_to_dict(url)
    params.update(user=user, password=password)
    return make_conninfo(**params)


@pytest.fixture
def job_user_url(db_url: str, admin_url: str) -> Iterator[str]:
    """A LOGIN user that is a member of the job role (as the operator creates it), for this test."""
    name = f"sjr_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{JOB_USER_PASSWORD}' IN ROLE {JOB_ROLE}")
    yield as_user(db_url, name, JOB_USER_PASSWORD)
    reset_connection()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # its connections must be gone before the role can be dropped
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        admin.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
def runner_on(monkeypatch) -> Iterator[object]:
    """``runner_on(url)`` points the runner's (thread-local) connection at ``url``."""

    def point(url: str) -> None:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
        reset_connection()

    yield point
    reset_connection()


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the Powertools logger writes during the test (its handler keeps the stream it
    was created with, so pytest's capture does not see it)."""
    buffer = io.StringIO()
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE)
    swapped = []
    for handler in logging.getLogger(service).handlers:
        if isinstance(handler, logging.StreamHandler):
            swapped.append((handler, handler.stream))
            handler.stream = buffer
    assert swapped, "the Powertools logger has no stream handler"
    yield buffer
    for handler, stream in swapped:
        handler.stream = stream
