"""Nothing of the jobs layer is reachable through Supabase's public API (issue 17).

The database here is shaped like a Supabase project: its roles (anon, authenticated,
service_role, NOLOGIN as Supabase creates them), the schema owned and migrated by a
non-superuser owner (Supabase's ``postgres``), and Supabase's default privileges in
``public`` (ALL on new tables, functions and sequences to the three API roles), set BEFORE
migrating. PostgREST runs every request as anon or authenticated (``SET ROLE``), so the
tests do the same.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import psycopg
import pytest

from jobctl.databases import create_database, drop_database, with_database
from shared import registry
from shared.db import close_quietly, connect
from shared.exposure import APP_FACING, exposed_objects, jobs_layer_names
from shared.migrations import FUNCTIONS_DIR, MIGRATIONS_DIR, discover, discover_app, migrate
from tests.conftest import create_database_from_template
from tests.integration import test_migrations as guide_sql
from tests.reliability.conftest import as_user

OWNER = "sb_owner_test"
OWNER_PASSWORD = "Sb-0wner-test-pw"
PUBLIC_ROLES = ("anon", "authenticated")

# Supabase's roles, as supabase/postgres migrations/db/init-scripts/00000000000000-initial-schema.sql
# creates them. Roles are cluster-wide, so each is created only if missing.
SUPABASE_ROLES = f"""
DO $$
DECLARE
    spec text[];
BEGIN
    FOREACH spec SLICE 1 IN ARRAY ARRAY[
        ['anon', 'NOLOGIN NOINHERIT'],
        ['authenticated', 'NOLOGIN NOINHERIT'],
        ['service_role', 'NOLOGIN NOINHERIT BYPASSRLS'],
        ['{OWNER}', 'LOGIN CREATEROLE PASSWORD ''{OWNER_PASSWORD}''']]
    LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = spec[1]) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s', spec[1], spec[2]);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's fixture created it at the same moment
            END;
        END IF;
    END LOOP;
END $$;
"""
# Supabase's grants and default privileges in public, set by the owner (who then migrates).
SUPABASE_DEFAULTS = """
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
"""

# What the API roles may reach after migrating: the reference app schema (which the tests use
# as the app, with Supabase's defaults) and the app-facing objects. Nothing else.
APP_OBJECTS = {
    "users",
    "user_daily_activity",
    "user_gamification",
    "challenge_templates",
    "daily_challenges",
    "user_challenge_progress",
    "messages",
    "stories",
    "story_views",
    "story_reactions",
    "typing_indicators",
    "user_presence",
    "user_reports",
    "moderation_actions",
    "notifications",
    "record_activity",
    *APP_FACING,
}


@pytest.fixture(scope="session")
def supabase_template(admin_url: str) -> Iterator[str]:
    """A Supabase-shaped database, migrated once per session by its (non-superuser) owner."""
    name = f"supabase_template_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(SUPABASE_ROLES)
    owner = connect(as_user(create_database(admin_url, name, owner=OWNER, replace=True), OWNER, OWNER_PASSWORD))
    try:
        owner.execute(SUPABASE_DEFAULTS)
        migrate(owner, discover_app())  # the app's tables (the app's own grants), then the jobs layer
        migrate(owner)
    finally:
        owner.close()
    yield name
    drop_database(admin_url, name)


@pytest.fixture
def sb_url(admin_url: str, supabase_template: str) -> Iterator[str]:
    """A fresh copy of the Supabase-shaped database (a superuser's URL)."""
    name = create_database_from_template(admin_url, supabase_template)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" OWNER TO {OWNER}')
    yield with_database(admin_url, name)
    drop_database(admin_url, name)


@pytest.fixture
def sb(sb_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to it as the owner (Supabase's SQL editor's user)."""
    conn = connect(as_user(sb_url, OWNER, OWNER_PASSWORD))
    yield conn
    close_quietly(conn)


@pytest.fixture
def api(sb_url: str) -> Iterator[psycopg.Connection]:
    """A connection that can become anon or authenticated, as PostgREST's authenticator does."""
    conn = connect(sb_url)
    yield conn
    close_quietly(conn)


def refused_as(conn: psycopg.Connection, role: str, statement: str, params=None) -> str:
    """Run ``statement`` as ``role`` (as PostgREST does: SET ROLE in a transaction); its SQLSTATE."""
    with conn.transaction():
        conn.execute(f"SET LOCAL ROLE {role}")
        assert conn.execute("SELECT current_user AS u").fetchone()["u"] == role
        try:
            with conn.transaction():
                conn.execute(statement, params)
        except psycopg.Error as exc:
            return exc.sqlstate or "?"
    raise AssertionError(f"{role} was allowed to run: {statement}")


def reachable(conn: psycopg.Connection, role: str) -> set[str]:
    """Every relation and function in public that ``role`` holds any privilege on."""
    rows = conn.execute(
        """SELECT c.relname AS name FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND (has_any_column_privilege(%(r)s, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
                   OR has_table_privilege(%(r)s, c.oid, 'DELETE, TRUNCATE, TRIGGER'))
           UNION
           SELECT c.relname FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
              AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(%(r)s, c.oid, 'USAGE, SELECT, UPDATE') END
           UNION
           SELECT p.proname FROM pg_proc p
            WHERE p.pronamespace = 'public'::regnamespace AND has_function_privilege(%(r)s, p.oid, 'EXECUTE')""",
        {"r": role},
    ).fetchall()
    return {r["name"] for r in rows}


def app_sequences(conn: psycopg.Connection) -> set[str]:
    """The sequences the app's own tables own (identity columns)."""
    rows = conn.execute(
        """SELECT s.relname FROM pg_class s
             JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
             JOIN pg_class t ON t.oid = d.refobjid
            WHERE s.relkind = 'S' AND t.relname = ANY(%s)""",
        (sorted(APP_OBJECTS),),
    ).fetchall()
    return {r["relname"] for r in rows}


def test_the_database_is_shaped_like_supabase(sb):
    # the default privileges really would grant the API roles every new object
    defaults = sb.execute(
        "SELECT defaclobjtype AS t, defaclacl::text AS acl FROM pg_default_acl "
        "WHERE defaclnamespace = 'public'::regnamespace"
    ).fetchall()
    assert {d["t"] for d in defaults} == {"r", "f", "S"}
    assert all(r in d["acl"] for d in defaults for r in ("anon", "authenticated", "service_role"))
    # and the app's tables (created by the same migrations) did get them
    assert has(sb, "anon", "SELECT has_table_privilege('anon', 'users', 'SELECT, INSERT, DELETE')")
    assert not has(sb, "anon", "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")


def has(conn, role, query) -> bool:
    return next(iter(conn.execute(query).fetchone().values()))


@pytest.mark.parametrize("role", PUBLIC_ROLES)
def test_the_api_roles_reach_only_the_app(sb, role):
    # Walking every relation, sequence and function in public with has_*_privilege:
    # what the role may touch is the app's (and the app-facing views), nothing of the jobs layer
    assert reachable(sb, role) - APP_OBJECTS - app_sequences(sb) == set()
    assert reachable(sb, role) & set(jobs_layer_names()) == set()


def test_the_rule_finds_the_jobs_layer(sb):
    # the objects the lockdown closes: the run log, its views, the job state, every jobs function
    names = set(jobs_layer_names())
    assert {"cron_job_logs", "v_recent_cron_jobs", "v_cron_job_stats", "streak_days", "schema_migrations"} <= names
    assert {"logged_run", "streaks_done_for"} <= names
    assert {f for job in registry.JOBS for f in (job.sql_function, job.work_function)} <= names
    assert names.isdisjoint(APP_OBJECTS)


@pytest.mark.parametrize("role", PUBLIC_ROLES)
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT logged_run('x', '(select count(*) from users)::text::jsonb', now())",
        "SELECT logged_run('update-user-streaks', now())",
        "SELECT cleanup_inactive_accounts('2030-01-01')",
        "SELECT update_user_streaks()",
        "SELECT job_update_user_streaks(now())",
        "SELECT streaks_done_for(now())",
        "SELECT * FROM cron_job_logs",
        "INSERT INTO cron_job_logs (job_name, status, trigger, as_of) VALUES ('x', 'running', 'sql', now())",
        "UPDATE cron_job_logs SET status = 'failed'",
        "DELETE FROM cron_job_logs",
        "TRUNCATE cron_job_logs",
        "SELECT * FROM v_recent_cron_jobs",
        "SELECT * FROM v_cron_job_stats",
        "SELECT * FROM streak_days",
        "INSERT INTO streak_days VALUES ('2030-01-01', now(), 0, 0, 0)",
        "SELECT * FROM leaderboard_period",
        "SELECT * FROM schema_migrations",
        "SELECT nextval('cron_job_logs_id_seq')",
    ],
)
def test_the_calls_from_the_issue_are_refused(sb, api, role, statement):
    sqlstate = refused_as(api, role, statement)
    # insufficient_privilege (or, for the old logged_run signature, no such function)
    assert sqlstate in ("42501", "42883"), sqlstate
    # and nothing was written to the run log (no flood of failed rows)
    assert sb.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 0


def _postgrest_call(conn, proc_oid: int) -> str:
    """``SELECT f(a := _.a, ...) FROM json_to_record($1) AS _(a type, ...)``: how PostgREST's
    /rpc/<function> calls a function with named JSON arguments."""
    row = conn.execute(
        """SELECT p.proname, coalesce(p.proargnames, ARRAY[]::text[]) AS names,
                  ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t) AS types
             FROM pg_proc p WHERE p.oid = %s""",
        (proc_oid,),
    ).fetchone()
    # a polymorphic argument (users_batch's anyelement) is called with a concrete type, as a caller must
    types = ["bigint" if t == "anyelement" else t for t in row["types"]]
    pairs = list(zip(row["names"], types, strict=False))
    args = ", ".join(f'"{n}" := _."{n}"' for n, _ in pairs)
    record = ", ".join(f'"{n}" {t}' for n, t in pairs) or "dummy int"
    return f'SELECT "public"."{row["proname"]}"({args}) FROM json_to_record(%s::json) AS _({record})'


@pytest.mark.parametrize("role", PUBLIC_ROLES)
def test_no_jobs_function_can_be_called_the_way_postgrest_calls_it(sb, api, role):
    procs = sb.execute(
        "SELECT oid, proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname = ANY(%s)",
        (jobs_layer_names(),),
    ).fetchall()
    assert len(procs) >= 2 * len(registry.JOBS) + 2  # wrappers, work functions, logged_run, the check
    payload = '{"p_job_name": "update-user-streaks", "p_as_of": "2030-01-01T00:00:00Z", "p_min_reporters": 1}'
    for proc in procs:
        statement = _postgrest_call(sb, proc["oid"])
        assert refused_as(api, role, statement, (payload,)) == "42501", proc["proname"]
    # the same call is a working call for the owner (so the refusals above are privilege, not shape)
    owner_call = _postgrest_call(sb, sb.execute("SELECT 'update_user_streaks'::regproc::oid AS o").fetchone()["o"])
    assert sb.execute(owner_call, (payload,)).fetchone() is not None
    assert sb.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 1


def test_the_owner_still_runs_the_guides_hand_calls_and_monitoring(sb):
    # Supabase's SQL editor runs as the owner: the guide's "Testing Jobs Manually" and its queries
    assert sb.execute("SELECT current_user AS u, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == {
        "u": OWNER,
        "rolsuper": False,
    }
    for job in registry.JOBS:
        sb.execute(f"SELECT {job.sql_function}();")
    queries = [q for name, q in vars(guide_sql).items() if name.startswith("GUIDE_") and isinstance(q, str)]
    assert len(queries) >= 10
    for query in queries:
        sb.execute(query)
    logged = sb.execute("SELECT job_name, trigger FROM cron_job_logs ORDER BY id").fetchall()
    assert [(r["job_name"], r["trigger"]) for r in logged] == [(job.sql_function, "sql") for job in registry.JOBS]
    assert sb.execute("SELECT count(*) AS n FROM v_recent_cron_jobs").fetchone()["n"] == len(registry.JOBS)


def test_there_is_no_exposure_after_migrating(sb):
    assert exposed_objects(sb) == []


def test_every_migrate_closes_what_was_reopened_and_exposure_says_how(sb):
    # Given grants that reopen the jobs layer (a hand GRANT, or a tool re-applying defaults)
    sb.execute("GRANT ALL ON cron_job_logs TO anon")
    sb.execute("GRANT EXECUTE ON FUNCTION logged_run(text, timestamptz) TO PUBLIC")
    sb.execute("ALTER TABLE streak_days DISABLE ROW LEVEL SECURITY")
    # Then the exposure report names each, with the statement that closes it
    found = {(e.kind, e.name, e.role): e for e in exposed_objects(sb)}
    assert ("table", "cron_job_logs", "anon") in found
    assert "TRUNCATE" in found["table", "cron_job_logs", "anon"].privileges
    assert found["table", "cron_job_logs", "anon"].fix == "REVOKE ALL ON TABLE cron_job_logs FROM PUBLIC, anon"
    assert ("function", "logged_run(text,timestamp with time zone)", "authenticated") in found
    assert ("row-level security off", "streak_days", None) in found
    # When the next migration runs (with nothing pending)
    assert migrate(sb) == []
    # Then everything is closed again
    assert exposed_objects(sb) == []
    for role in PUBLIC_ROLES:
        assert reachable(sb, role) & set(jobs_layer_names()) == set()


def test_a_new_jobs_layer_table_function_and_view_are_closed_without_editing_any_list(sb, api, tmp_path):
    # Given a later jobs-layer migration that adds state, a helper and a view (and Supabase's
    # default privileges, which grant all three to the API roles as they are created)
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    (migrations / "V999__new_state.sql").write_text(
        "CREATE TABLE IF NOT EXISTS job_new_state (id bigint GENERATED ALWAYS AS IDENTITY, note text);\n"
        "CREATE OR REPLACE FUNCTION new_helper(p int) RETURNS int LANGUAGE sql AS $$ SELECT p $$;\n"
        "CREATE VIEW v_new_state AS SELECT note FROM job_new_state;\n"
        "INSERT INTO job_new_state (note) VALUES ('secret');\n"
    )
    # When it is migrated
    assert migrate(sb, discover(migrations, FUNCTIONS_DIR)) == ["V999__new_state.sql"]
    # Then the API roles reach none of it
    paths = [m.path for m in discover(migrations, FUNCTIONS_DIR)]
    assert {"job_new_state", "new_helper", "v_new_state"} <= set(jobs_layer_names(paths))
    assert exposed_objects(sb, paths) == []
    for role in PUBLIC_ROLES:
        assert reachable(sb, role) & {"job_new_state", "job_new_state_id_seq", "new_helper", "v_new_state"} == set()
        assert refused_as(api, role, "SELECT * FROM v_new_state") == "42501"
        assert refused_as(api, role, "SELECT new_helper(1)") == "42501"


def test_row_level_security_hides_the_run_log_even_from_a_role_granted_it(sb, api):
    # Given a run in the log, and a GRANT that reopens the table, a view and the job state to anon
    sb.execute("SELECT reset_daily_challenges()")
    sb.execute("SELECT update_user_streaks()")
    sb.execute("GRANT SELECT ON cron_job_logs, v_recent_cron_jobs, v_cron_job_stats, streak_days TO anon")
    with api.transaction():
        api.execute("SET LOCAL ROLE anon")
        # Then anon sees no row of the tables (row-level security, no policy for it)
        assert api.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 0
        assert api.execute("SELECT count(*) AS n FROM streak_days").fetchone()["n"] == 0
        # nor through the views, which read the table with anon's rights (security_invoker)
        assert api.execute("SELECT count(*) AS n FROM v_recent_cron_jobs").fetchone()["n"] == 0
        assert api.execute("SELECT count(*) AS n FROM v_cron_job_stats").fetchone()["n"] == 0
    # while the owner sees both runs
    assert sb.execute("SELECT count(*) AS n FROM v_recent_cron_jobs").fetchone()["n"] == 2
    assert sb.execute("SELECT count(*) AS n FROM streak_days").fetchone()["n"] >= 1


def test_service_role_gets_nothing_of_the_jobs_layer_either(sb):
    # the secret key's role needs nothing of the jobs; default privileges granted it ALL
    assert reachable(sb, "service_role") & set(jobs_layer_names()) == set()


def test_the_app_facing_objects_keep_the_apps_grants(sb):
    # the leaderboards and leaderboard_rank() are the app's call: Supabase's defaults stay on them
    for name in ("mv_global_leaderboard", "mv_weekly_leaderboard", "mv_language_leaderboard"):
        assert sb.execute("SELECT has_table_privilege('anon', %s, 'SELECT') AS ok", (name,)).fetchone()["ok"]
    assert sb.execute(
        "SELECT has_function_privilege('anon', 'leaderboard_rank(bigint, timestamptz)', 'EXECUTE') AS ok"
    ).fetchone()["ok"]


def test_exposure_on_a_plain_postgres_counts_grants_to_public(conn):
    # Given the ordinary test database (no Supabase defaults): nothing is exposed
    assert exposed_objects(conn) == []
    # When a jobs-layer object is granted to PUBLIC (every role, anon included where it exists)
    conn.execute("GRANT SELECT ON v_cron_job_stats TO PUBLIC")
    # Then it is reported, with its fix
    found = exposed_objects(conn)
    assert {(e.kind, e.name, e.privileges) for e in found} == {("view", "v_cron_job_stats", ("SELECT",))}
    assert all(e.fix.startswith("REVOKE ALL ON TABLE v_cron_job_stats FROM PUBLIC") for e in found)


def test_jobctl_doctor_reports_the_exposure_and_how_to_close_it(sb, sb_url):
    from typer.testing import CliRunner

    from jobctl.cli import app

    def doctor() -> dict:
        result = CliRunner().invoke(app, ["doctor", "--json"], env={"DATABASE_URL": sb_url})
        return json.loads(result.stdout)["exposure"]

    # Given a migrated Supabase-shaped database, doctor finds nothing reachable
    assert doctor() == {"checked": True, "reachable": []}
    # When a jobs-layer table is granted to anon
    sb.execute("GRANT SELECT ON cron_job_logs TO anon")
    # Then doctor names it, for whom, and the statement that closes it
    (found,) = doctor()["reachable"]
    assert (found["kind"], found["name"], found["role"], found["privileges"]) == (
        "table",
        "cron_job_logs",
        "anon",
        ["SELECT"],
    )
    assert found["fix"] == "REVOKE ALL ON TABLE cron_job_logs FROM PUBLIC, anon"
