"""A job function that fails before its run starts (secret, connection, authentication) still
counts a failed run: the ``run failed`` ERROR line and ``RunsFailed`` that the alarms and the
dashboard read, with no password anywhere in the output."""

from __future__ import annotations

import json
import sys

import boto3
import pytest
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from functions.handler import handler
from shared.db import reset_connection
from shared.errors import ConfigError, DatabaseUnavailable
from shared.observability import logger
from tests.factories import lambda_context
from tests.integration.test_handler import JOB, emf_blobs

PASSWORD = "pw-Never-Logged-9f3c"


@pytest.fixture
def secret_env(monkeypatch):
    """Point the handler at a Secrets Manager secret (moto) holding ``url``; returns the setter."""

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("JOB_NAME", JOB)
    with mock_aws():

        def use(url: str | None) -> None:
            client = boto3.client("secretsmanager")
            if url is None:  # a secret that does not exist (deleted, wrong ARN, no permission)
                arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:missing-AbCdEf"
            else:
                arn = client.create_secret(Name="jobs-db", SecretString=url)["ARN"]
            monkeypatch.setenv("DATABASE_SECRET_ARN", arn)

        reset_connection()
        yield use
        reset_connection()


def run_and_capture(capsys) -> tuple[BaseException, str]:
    stream = logger.registered_handler
    previous = stream.setStream(sys.stdout)
    try:
        with pytest.raises(Exception) as raised:
            handler({}, lambda_context(JOB))
    finally:
        stream.setStream(previous)
    return raised.value, capsys.readouterr().out


def missing_database(admin_url: str) -> str:
    params = conninfo_to_dict(admin_url)
    user, host, port = params.get("user", "postgres"), params["host"], params.get("port", 5432)
    return f"postgresql://{user}:{PASSWORD}@{host}:{port}/no_such_db"


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("missing database", DatabaseUnavailable),
        ("connection refused", DatabaseUnavailable),
        ("secret unreadable", ConfigError),
        ("secret not a url", ConfigError),
    ],
)
def test_a_run_that_cannot_start_is_a_failed_run(secret_env, admin_url, capsys, case, error):
    # Given a secret that leads nowhere
    url = {
        "missing database": missing_database(admin_url),
        "connection refused": f"postgresql://jobs:{PASSWORD}@127.0.0.1:9/postgres?connect_timeout=2",
        "secret unreadable": None,
        "secret not a url": f"host=db password={PASSWORD}",
    }[case]
    secret_env(url)
    # When the job function is invoked
    exc, out = run_and_capture(capsys)
    # Then it raises (Lambda counts an error, retries, dead-letters) with the project's error
    assert isinstance(exc, error), exc
    # And logs "run failed" at ERROR with the fields of any failed run
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"level"')]
    [failed] = [line for line in lines if line["message"] == "run failed"]
    assert failed["level"] == "ERROR" and failed["status"] == "failed"
    assert failed["job"] == JOB and failed["trigger"] == "manual" and failed.get("run_id") is None  # no row
    assert {"as_of", "duration_ms", "error", "function_request_id"} <= set(failed)
    assert failed["error"] == str(exc)
    # And emits RunsFailed for the job, which its alarm watches
    [blob] = emf_blobs(out)
    assert blob["job"] == JOB and blob["RunsFailed"] in (1.0, [1.0])
    assert "RunsSucceeded" not in blob
    # And the password appears nowhere
    assert PASSWORD not in out and PASSWORD not in str(exc)
