"""Whole databases on a server: point a URL at one, create one (empty or from a template), drop one.

Used by the demo, the benchmark, the embedded server and the tests. Names are quoted as
identifiers (``psycopg.sql.Identifier``), never formatted into the SQL.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo


def with_database(url: str, name: str) -> str:
    """The connection string ``url`` pointed at database ``name``."""
    return make_conninfo(url, dbname=name)


def exists(admin_url: str, name: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def create_database(
    admin_url: str,
    name: str,
    *,
    template: str | None = None,
    owner: str | None = None,
    file_copy: bool = False,
    replace: bool = False,
) -> str:
    """Create ``name`` (a copy of ``template`` when given, owned by ``owner`` when given) and return its URL.

    ``replace`` drops an existing ``name`` first; ``file_copy`` copies the template's files
    (``STRATEGY FILE_COPY``: faster for a large template, one checkpoint).
    """
    if replace:
        drop_database(admin_url, name)
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if owner is not None:
        query += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
    if template is not None:
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        if file_copy:
            query += sql.SQL(" STRATEGY FILE_COPY")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(query)
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop ``name`` if it exists, even a template, even with sessions open on it."""
    ident = sql.Identifier(name)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        row = admin.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if row is None:
            return
        if row[0]:
            admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true").format(ident))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
