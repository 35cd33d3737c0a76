"""Supabase's shape, end to end: a uuid-keyed app owned by a non-superuser, row-level security
with a deny-all policy on every app table, migrated by that owner; then every job runs through
the runner as a login user in the job role, sees and changes every row it must, and the app's
own policies are left exactly as they were."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from shared import registry
from shared.db import connect, get_connection
from shared.events import RunRequest, Trigger
from shared.migrations import migrate
from shared.runner import Status, run
from tests.adoption.conftest import GUIDE_ERA_APP, GUIDE_ERA_JOBS, apply_sql_file
from tests.adoption.test_contract import drop_roles
from tests.factories import utc
from tests.reliability.conftest import JOB_ROLE, as_user

PASSWORD = "pw"
POLICIES = """SELECT c.relname, p.polname, p.polpermissive, p.polcmd, pg_get_expr(p.polqual, p.polrelid) AS qual,
                     pg_get_expr(p.polwithcheck, p.polrelid) AS with_check, c.relrowsecurity, c.relforcerowsecurity
                FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
               WHERE c.relname <> 'cron_job_logs' ORDER BY 1, 2"""


@pytest.fixture
def owned_guide_era(admin_url: str, empty_db_url: str) -> Iterator[tuple[psycopg.Connection, str]]:
    """The guide-era database built and migrated by a non-superuser owner, and a job-role login user."""
    owner, job_user = f"app_owner_{uuid.uuid4().hex[:8]}", f"sjr_{uuid.uuid4().hex[:12]}"
    dbname = conninfo_to_dict(empty_db_url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {owner} LOGIN PASSWORD '{PASSWORD}' CREATEROLE")
        admin.execute(f'ALTER DATABASE "{dbname}" OWNER TO {owner}')  # public schema: pg_database_owner
        admin.execute(f"CREATE ROLE {job_user} LOGIN PASSWORD '{PASSWORD}' IN ROLE {JOB_ROLE}")
    conn = connect(as_user(empty_db_url, owner, PASSWORD))
    assert not conn.execute(
        "SELECT rolsuper OR rolbypassrls AS b FROM pg_roles WHERE rolname = current_user"
    ).fetchone()["b"]
    apply_sql_file(conn, GUIDE_ERA_APP)
    apply_sql_file(conn, GUIDE_ERA_JOBS)
    yield conn, as_user(empty_db_url, job_user, PASSWORD)
    conn.close()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" OWNER TO CURRENT_USER')
    drop_roles(admin_url, empty_db_url, job_user, owner)


def test_every_job_runs_as_the_job_role_through_rls_and_the_apps_policies_stay(owned_guide_era, runner_on):
    conn, job_user_url = owned_guide_era
    policies_before = conn.execute(POLICIES).fetchall()
    assert len(policies_before) == 13 and all(p["relrowsecurity"] for p in policies_before)  # every app table
    # Given the adopted app: two users earn XP on 2026-11-20; a third report against user10
    migrate(conn)
    conn.execute(
        "SELECT record_activity(id, '2026-11-20 16:00+00', 25) FROM users WHERE username IN ('user1', 'user2')"
    )
    conn.execute("""INSERT INTO user_reports (reporter_id, reported_user_id, reason, created_at)
                    SELECT id, (SELECT id FROM users WHERE username = 'user10'), 'spam', '2026-11-20 20:00+00'
                      FROM users WHERE username = 'user5'""")
    # When every job runs through the runner as a login user in the job role
    runner_on(job_user_url)
    assert get_connection().execute("SELECT current_user AS u").fetchone()["u"].startswith("sjr_")
    as_of = utc(2026, 11, 21)
    results = {job.name: run(RunRequest(job=job, as_of=as_of, trigger=Trigger.SCHEDULE)) for job in registry.JOBS}
    # Then every run succeeded and saw the rows the deny-all policies hide from everyone else
    assert {n: r.status for n, r in results.items()} == {job.name: Status.SUCCEEDED for job in registry.JOBS}
    assert results["update-user-streaks"].summary["streaks_incremented"] == 10  # user1..user10 active on 11-20
    assert results["process-moderation-queue"].summary["users_banned"] == 1  # user10: 3 distinct reporters
    assert results["cleanup-expired-stories"].summary["stories_deleted"] == 12
    assert results["cleanup-expired-sessions"].summary["users_marked_offline"] == 2
    assert results["reset-daily-challenges"].summary["challenges_archived"] == 1
    assert results["update-leaderboards"].summary["global_rows"] == 9  # active, XP > 0: user1..user9
    # And the owner sees what the jobs wrote; the app's policies and RLS settings are as they were
    assert conn.execute("SELECT account_status FROM users WHERE username = 'user10'").fetchone()["account_status"] == (
        "banned"
    )
    # (the jobs layer's own tables, streak_days, daily_metrics and the rest, get the job role's
    # policy from the lockdown; the app's tables get nothing)
    app_tables = {p["relname"] for p in policies_before}
    assert [p for p in conn.execute(POLICIES).fetchall() if p["relname"] in app_tables] == policies_before
    # And a role that is not the owner still sees nothing through the app's deny-all policy
    conn.execute("GRANT SELECT ON users TO " + JOB_ROLE)
    with psycopg.connect(job_user_url, autocommit=True) as reader:
        assert reader.execute("SELECT count(*) FROM users").fetchone()[0] == 0
    conn.execute("REVOKE SELECT ON users FROM " + JOB_ROLE)
