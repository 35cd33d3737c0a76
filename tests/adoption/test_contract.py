"""The contract (shared/contract.py): checked before `jobctl migrate` and the deploy change anything."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from shared import contract, registry
from shared.contract import CONTRACT, ContractError, Gap, check
from shared.db import connect
from shared.errors import MigrationError
from shared.migrations import discover_app, migrate
from tests.adoption.conftest import GUIDE_ERA_APP, GUIDE_ERA_JOBS, apply_sql_file
from tests.reliability.conftest import as_user


def _exists(conn, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL AS e", (name,)).fetchone()["e"]


def test_the_contract_names_real_jobs_and_every_job_needs_something():
    assert {j for n in CONTRACT for j in n.jobs} == {job.name for job in registry.JOBS}
    assert len({(n.table, n.column) for n in CONTRACT}) == len(CONTRACT)


def test_the_reference_app_meets_the_contract_before_and_after_the_jobs_layer(empty_db_url, conn):
    app = connect(empty_db_url)
    migrate(app, discover_app())
    assert check(app) == []
    assert check(conn) == []  # the template: app schema and jobs layer


def test_a_guide_era_app_meets_the_contract_and_gets_every_added_column(empty_db_url):
    conn = connect(empty_db_url)
    apply_sql_file(conn, GUIDE_ERA_APP)
    apply_sql_file(conn, GUIDE_ERA_JOBS)
    assert check(conn) == []
    migrate(conn)
    present = {
        (r["table_name"], r["column_name"])
        for r in conn.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall()
    }
    assert [(n.table, n.column) for n in CONTRACT if (n.table, n.column) not in present] == []
    assert check(conn) == []


def test_an_empty_database_is_refused_with_every_gap_and_left_untouched(empty_db_url):
    conn = connect(empty_db_url)
    with pytest.raises(ContractError) as refused:
        migrate(conn)
    message = str(refused.value)
    assert isinstance(refused.value, MigrationError)
    assert "nothing was changed" in message and "jobctl migrate --app-schema" in message
    assert "users: table missing (needed by reset-daily-challenges, update-user-streaks" in message
    assert {g.table for g in refused.value.gaps} == {n.table for n in CONTRACT if n.origin != "jobs"}
    assert not _exists(conn, "schema_migrations") and not _exists(conn, "cron_job_logs")


def test_missing_and_incompatible_columns_are_all_listed_with_the_jobs_that_need_them(empty_db_url):
    # Given an app without users.last_active_at, a timestamp without time zone for messages,
    # a text user_id in notifications while users.id is bigint, and no typing_indicators
    conn = connect(empty_db_url)
    migrate(conn, discover_app())
    conn.execute("""
        ALTER TABLE users DROP COLUMN last_active_at;
        ALTER TABLE messages ALTER COLUMN created_at TYPE timestamp;
        ALTER TABLE notifications DROP CONSTRAINT notifications_user_id_fkey;
        ALTER TABLE notifications ALTER COLUMN user_id TYPE text;
        ALTER TABLE user_presence ADD COLUMN went_offline_at integer;
        DROP TABLE typing_indicators;
    """)
    before = conn.execute("SELECT count(*) AS n FROM pg_class").fetchone()["n"]
    # When the jobs layer is migrated
    with pytest.raises(ContractError) as refused:
        migrate(conn)
    # Then one message lists every gap, each with the jobs that need it, and nothing changed
    assert refused.value.gaps == [
        Gap("users", "last_active_at", "column missing", ("update-user-streaks", "cleanup-inactive-accounts")),
        Gap(
            "messages",
            "created_at",
            "type timestamp without time zone, needs timestamp with time zone",
            ("calculate-daily-metrics", "send-weekly-reports"),
        ),
        Gap("typing_indicators", None, "table missing", ("cleanup-expired-sessions",)),
        Gap(
            "user_presence",
            "went_offline_at",
            "type integer, needs timestamp with time zone",
            ("cleanup-expired-sessions",),
        ),
        Gap(
            "notifications",
            "user_id",
            "type text, needs the type of users.id (bigint)",
            ("send-daily-reminders", "send-weekly-reports"),
        ),
    ]
    message = str(refused.value)
    assert message.splitlines()[0].endswith("5 gap(s); nothing was changed")
    assert "  - messages.created_at: type timestamp without time zone, needs timestamp with time zone " in message
    assert conn.execute("SELECT count(*) AS n FROM pg_class").fetchone()["n"] == before
    assert not _exists(conn, "cron_job_logs")


def test_an_enum_status_and_varchar_columns_fit(empty_db_url):
    conn = connect(empty_db_url)
    migrate(conn, discover_app())
    conn.execute("""
        CREATE TYPE account_status AS ENUM ('active', 'inactive', 'banned', 'deleted');
        ALTER TABLE users DROP CONSTRAINT users_account_status_check;
        DROP INDEX idx_users_last_active;
        ALTER TABLE users ALTER COLUMN account_status DROP DEFAULT;
        ALTER TABLE users ALTER COLUMN account_status TYPE account_status USING account_status::account_status;
        ALTER TABLE users ALTER COLUMN username TYPE varchar(50);
    """)
    assert check(conn) == []
    migrate(conn)
    assert check(conn) == []


@pytest.fixture
def app_owned_by_another_role(admin_url, empty_db_url):
    """The reference app with RLS (deny-all) on every table, owned by a role that is not the migrating user."""
    owner, migrator = f"app_owner_{uuid.uuid4().hex[:8]}", f"migrator_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {owner} NOLOGIN")
        admin.execute(f"CREATE ROLE {migrator} LOGIN PASSWORD 'pw' CREATEROLE")
        admin.execute(f'GRANT ALL ON DATABASE "{conninfo_to_dict(empty_db_url)["dbname"]}" TO {migrator}')
    conn = connect(empty_db_url)
    migrate(conn, discover_app())
    conn.execute(f"""
        DO $$ DECLARE t text; BEGIN
          FOR t IN SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
                     AND relname <> 'schema_migrations' LOOP
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('CREATE POLICY app_deny_all ON %I USING (false) WITH CHECK (false)', t);
            EXECUTE format('ALTER TABLE %I OWNER TO {owner}', t);
            EXECUTE format('GRANT ALL ON %I TO {migrator}', t);
          END LOOP;
        END $$;
        GRANT ALL ON SCHEMA public TO {migrator};
    """)
    yield conn, owner, migrator
    conn.close()
    drop_roles(admin_url, empty_db_url, owner, migrator)


def drop_roles(admin_url: str, db_url: str, *roles: str) -> None:
    """Drop test roles (their objects in ``db_url`` go to the admin first)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY(%s)", (list(roles),))
    with psycopg.connect(db_url, autocommit=True) as db:
        for role in roles:
            db.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
            db.execute(f"DROP OWNED BY {role}")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for role in roles:
            admin.execute(f'REVOKE ALL ON DATABASE "{conninfo_to_dict(db_url)["dbname"]}" FROM {role}')
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_row_level_security_that_would_hide_rows_and_tables_it_may_not_alter_are_gaps(app_owned_by_another_role):
    conn, owner, migrator = app_owned_by_another_role
    as_migrator = connect(as_user(conn.info.dsn, migrator, "pw"))
    gaps = check(as_migrator)
    hidden = {g.table for g in gaps if g.problem.startswith("row-level security would hide rows")}
    assert hidden == {n.table for n in CONTRACT if n.origin != "jobs"}
    assert {g.table for g in gaps if g.problem.startswith(f"owned by {owner}: the jobs layer adds")} == set(
        contract.ALTERED_TABLES
    )
    with pytest.raises(ContractError):
        migrate(as_migrator)
    as_migrator.close()
    # As the owner's member, with RLS not forced, there is no gap; FORCE makes one again
    conn.execute(f"GRANT {owner} TO {migrator}")
    as_member = connect(as_user(conn.info.dsn, migrator, "pw"))
    assert check(as_member) == []
    conn.execute("ALTER TABLE stories FORCE ROW LEVEL SECURITY")
    assert [(g.table, "FORCE ROW LEVEL SECURITY" in g.problem) for g in check(as_member)] == [("stories", True)]
    as_member.close()


def test_the_docs_list_every_column_of_the_contract():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "adoption.md").read_text(encoding="utf-8")
    must_have = docs.split("What the app must have")[1].split("The check also refuses")[0]
    added = docs.split("### What the jobs layer adds to the app's tables")[1].split("Indexes the jobs' plans use")[0]
    for need in CONTRACT:
        section = {"app": must_have, "added": added}.get(need.origin)
        if section is None:
            continue
        rows = [line.split("|") for line in section.splitlines() if line.startswith("| `")]
        names = (f"`{need.column}`", f"`{need.column} ", f"`{need.table}.{need.column}`")
        listed = any(f"`{need.table}`" in r[1] and any(n in r[2] for n in names) for r in rows)
        assert listed, f"docs/adoption.md does not list {need.table}.{need.column} ({need.origin})"
