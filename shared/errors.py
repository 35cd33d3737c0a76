"""The project's own exceptions, and the one place driver errors become them.

Every message says what failed and what to do, and passes through :func:`redact`,
so no password reaches a log line, a result or ``cron_job_logs.error_message``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^@\s]*)@", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.IGNORECASE)

#: Secret values seen by this process (passwords of the URLs we connected with).
_known_secrets: set[str] = set()

#: The SQLSTATE a job's SQL raises when a job it depends on has not done its work.
DEPENDENCY_SQLSTATE = "JB001"


def register_secret_url(url: str) -> None:
    """Remember the password of a connection string (URL or key=value) so :func:`redact` scrubs it."""
    password: str | None
    try:
        value = conninfo_to_dict(url).get("password")
        password = None if value is None else str(value)
    except Exception:  # malformed: fall back to URL parsing
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
    for candidate in (password, unquote(password) if password else None):
        if candidate and len(candidate) >= 4:
            _known_secrets.add(candidate)


def redact(text: str) -> str:
    """Remove passwords from ``text``: URL credentials, ``password=...`` pairs, known secrets."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + "***@", text)
    text = _KV_PASSWORD.sub(lambda m: m.group("head") + "***", text)
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class JobsError(Exception):
    """Base of the project's errors. ``sqlstate`` is set when Postgres gave one."""

    sqlstate: str | None = None

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(redact(message))
        if sqlstate:
            self.sqlstate = sqlstate

    @property
    def kind(self) -> str:
        return type(self).__name__


class ConfigError(JobsError):
    """The configuration (environment, secret) is missing or malformed."""


class DatabaseUnavailable(JobsError):
    """The database could not be reached or refused the connection."""


class JobTimeout(JobsError):
    """A statement or lock wait ran past the job's time budget and was cancelled."""


class DependencyNotMet(JobsError):
    """A job this job depends on has not done its work for the same day yet."""


class JobFailed(JobsError):
    """The job's SQL raised an error."""


class ValidationError(JobsError):
    """An event, argument or option was refused before anything ran."""


class MigrationError(JobsError):
    """Migrations cannot be applied (a changed file, a failing statement)."""


def translate(exc: BaseException, *, what: str) -> JobsError:
    """Turn a driver (or any) exception into the project's own, with a redacted message.

    ``what`` names the operation ("connecting to the database", "running update-user-streaks").
    """
    if isinstance(exc, JobsError):
        return exc
    sqlstate = getattr(exc, "sqlstate", None)
    detail = str(exc).strip() or type(exc).__name__
    if sqlstate == DEPENDENCY_SQLSTATE:  # raised by a job's SQL: its dependency's work is missing
        return DependencyNotMet(detail, sqlstate=sqlstate)
    if isinstance(exc, pg_errors.QueryCanceled | pg_errors.LockNotAvailable):
        return JobTimeout(
            f"{what} was cancelled after reaching its time budget ({detail}); "
            "look for long locks or raise the job's timeout in the registry",
            sqlstate=sqlstate,
        )
    if isinstance(exc, psycopg.OperationalError) and sqlstate is None:
        return DatabaseUnavailable(
            f"{what} failed: the database could not be reached ({detail}); "
            "check the host, port, credentials and network path",
        )
    if isinstance(exc, pg_errors.InvalidPassword | pg_errors.InvalidAuthorizationSpecification):
        return DatabaseUnavailable(f"{what} failed: the database refused the credentials ({detail})", sqlstate=sqlstate)
    if isinstance(exc, psycopg.Error):
        return JobFailed(f"{what} failed: {detail}", sqlstate=sqlstate)
    return JobFailed(f"{what} failed: {type(exc).__name__}: {detail}")
