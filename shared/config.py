"""Where the database is: ``DATABASE_URL`` locally, a Secrets Manager secret on AWS.

The secret holds either the connection URL itself (``postgresql://...``, as Supabase
gives it) or RDS-style JSON (``{"username", "password", "host", "port", "dbname"}``, as
RDS and Aurora rotation write it). Powertools Parameters caches it for ``SECRET_MAX_AGE_S``
so warm invocations make no Secrets Manager call.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from shared.errors import ConfigError

SECRET_MAX_AGE_S = 300


def _url_from_secret(value: str) -> str:
    text = value.strip()
    if text.startswith(("postgres://", "postgresql://")):
        return text
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(
            "the database secret is neither a postgresql:// URL nor JSON; store the connection URL "
            "or RDS-style JSON with username, password, host, port and dbname"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("the database secret's JSON must be an object")
    for key in ("url", "DATABASE_URL", "database_url"):
        if isinstance(data.get(key), str):
            return _url_from_secret(data[key])
    missing = [k for k in ("username", "password", "host") if not data.get(k)]
    if missing:
        raise ConfigError(f"the database secret's JSON lacks {', '.join(missing)} (or a 'url' key)")
    user, password = quote(str(data["username"]), safe=""), quote(str(data["password"]), safe="")
    port = data.get("port") or 5432
    dbname = quote(str(data.get("dbname") or data.get("database") or "postgres"), safe="")
    return f"postgresql://{user}:{password}@{data['host']}:{port}/{dbname}?sslmode=require"


def database_url(*, refresh: bool = False) -> str:
    """The connection URL: ``DATABASE_URL`` if set, else the secret named by ``DATABASE_SECRET_ARN``.

    ``refresh=True`` bypasses the secret cache (after a rotation made the cached one wrong).
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    arn = os.environ.get("DATABASE_SECRET_ARN")
    if not arn:
        raise ConfigError("no database configured: set DATABASE_URL, or DATABASE_SECRET_ARN on AWS")
    return _secret_url(arn, refresh=refresh)


def maintenance_database_url() -> str | None:
    """The schema owner's connection for database-maintenance's VACUUM, if one is configured:
    ``MAINTENANCE_DATABASE_URL``, else the secret named by ``MAINTENANCE_DATABASE_SECRET_ARN``
    (on AWS, the migrations secret when the jobs have a user of their own). None: VACUUM runs on
    the job's own connection (enough on Postgres 17+, where the job role holds MAINTAIN)."""
    url = os.environ.get("MAINTENANCE_DATABASE_URL")
    if url:
        return url
    arn = os.environ.get("MAINTENANCE_DATABASE_SECRET_ARN")
    return _secret_url(arn) if arn else None


def _secret_url(arn: str, *, refresh: bool = False) -> str:
    return _url_from_secret(read_secret(arn, refresh=refresh))


def read_secret(arn: str, *, refresh: bool = False) -> str:
    """The secret's value as stored (cached ``SECRET_MAX_AGE_S``); ConfigError with the reason if unreadable."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_S, force_fetch=refresh)
    except Exception as exc:  # the SDK's message names the secret, never its value
        raise ConfigError(f"could not read the database secret {arn}: {type(exc).__name__}: {exc}") from None
    return value.decode() if isinstance(value, bytes) else str(value)
