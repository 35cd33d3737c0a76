"""A database's schema as plain data, to compare two databases built different ways."""

from __future__ import annotations

from typing import Any

import psycopg

_QUERIES = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity, a.attgenerated
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'm')
           AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """
        SELECT c.conrelid::regclass::text AS rel, c.conname, pg_get_constraintdef(c.oid) AS def
          FROM pg_constraint c WHERE c.connamespace = 'public'::regnamespace""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "views": """
        SELECT c.relname, c.relkind, pg_get_viewdef(c.oid) AS def FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')""",
    "functions": """
        SELECT p.oid::regprocedure::text AS sig, pg_get_functiondef(p.oid) AS def, p.prosecdef,
               p.proconfig::text AS config, p.proacl::text AS acl
          FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'""",
    "table_privileges": """
        SELECT c.relname, c.relacl::text AS acl, c.relrowsecurity, c.relforcerowsecurity,
               c.reloptions::text AS options
          FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'm')""",
    "column_privileges": """
        SELECT c.relname, a.attname, a.attacl::text AS acl FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         WHERE c.relnamespace = 'public'::regnamespace AND a.attacl IS NOT NULL AND a.attnum > 0""",
    "triggers": """
        SELECT tgrelid::regclass::text AS rel, tgname, pg_get_triggerdef(oid) AS def FROM pg_trigger
         WHERE NOT tgisinternal
           AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)""",
}


def snapshot(conn: psycopg.Connection) -> dict[str, set[Any]]:
    """Every public table's columns, constraints, indexes, views, functions, privileges, triggers."""
    return {kind: {tuple(r.values()) for r in conn.execute(query).fetchall()} for kind, query in _QUERIES.items()}


def differences(a: dict[str, set[Any]], b: dict[str, set[Any]]) -> dict[str, tuple[list[Any], list[Any]]]:
    """What is only in ``a`` and only in ``b``, per kind (empty when the schemas are the same)."""
    return {
        kind: (sorted(a[kind] - b[kind], key=repr), sorted(b[kind] - a[kind], key=repr))
        for kind in a
        if a[kind] != b[kind]
    }
