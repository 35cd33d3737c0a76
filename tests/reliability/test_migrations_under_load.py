"""Migrations under load: a deploy that migrates while jobs run fails no job and loses no run;
two deploys migrating at once apply each migration exactly once."""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta

import pytest

from shared import registry
from shared.db import connect, reset_connection
from shared.events import RunRequest, Trigger
from shared.migrations import FUNCTIONS_DIR, MIGRATIONS_DIR, discover, migrate
from shared.runner import Status, run
from tests.factories import make_user, record_activity, utc

START = utc(2026, 11, 1, 0, 0)
OCCURRENCES = 24
# jobs whose SQL reads or writes the tables the new migration locks (users, user_reports)
JOBS = ("process-moderation-queue", "update-leaderboards", "cleanup-expired-sessions")

#: A slow migration holding an ACCESS EXCLUSIVE lock on users for a while, with a side effect
#: (a primary key) that would fail if it were ever applied twice.
NEW_MIGRATION = """
CREATE TABLE deploy_marker (deploy int PRIMARY KEY);
INSERT INTO deploy_marker VALUES (1);
ALTER TABLE users ADD COLUMN preferred_reminder_hour smallint;
SELECT pg_sleep(1);
"""
NEXT_MIGRATION = "INSERT INTO deploy_marker VALUES (2);"


@pytest.fixture
def new_migrations(tmp_path):
    """The project's migrations plus two new versioned ones and an edited job function file."""
    versioned, functions = tmp_path / "migrations", tmp_path / "functions"
    shutil.copytree(MIGRATIONS_DIR, versioned)
    shutil.copytree(FUNCTIONS_DIR, functions)
    (versioned / "V900__deploy_under_load.sql").write_text(NEW_MIGRATION)
    (versioned / "V901__deploy_next.sql").write_text(NEXT_MIGRATION)
    edited = functions / "cleanup_expired_sessions.sql"
    edited.write_text(edited.read_text() + "\n-- edited by the deploy under load\n")
    return versioned, functions


def test_migrating_while_jobs_run_fails_no_job_and_applies_each_migration_once(conn, db_url, runner_on, new_migrations):
    # Given a little data for the jobs
    users = [make_user(conn, created_at=utc(2026, 10, 1)) for _ in range(5)]
    for uid in users:
        record_activity(conn, uid, utc(2026, 10, 31, 12), xp=5 * uid)
    for reporter in users[1:4]:
        conn.execute(
            "INSERT INTO user_reports (reporter_id, reported_user_id, created_at) VALUES (%s, %s, %s)",
            (reporter, users[0], utc(2026, 10, 31, 23)),
        )
    runner_on(db_url)
    versioned, functions = new_migrations
    started = threading.Barrier(len(JOBS) + 1)
    outcomes: dict[str, list] = {name: [] for name in JOBS}
    applied: list[list[str]] = []
    errors: list[BaseException] = []

    def jobs_thread(name: str) -> None:
        job = registry.get(name)
        try:
            for i in range(OCCURRENCES):
                if i == 2:
                    started.wait(timeout=30)  # the deploys start once every job thread is running
                request = RunRequest(job=job, as_of=START + timedelta(hours=i), trigger=Trigger.SCHEDULE)
                outcomes[name].append(run(request))
        except BaseException as exc:
            errors.append(exc)
        finally:
            reset_connection()

    def deploy() -> None:
        try:
            migrator = connect(db_url)
            try:
                applied.append(migrate(migrator, discover(versioned, functions)))
            finally:
                migrator.close()
        except BaseException as exc:
            errors.append(exc)

    # When jobs run on their own threads and two deploys migrate at once in the middle of them
    workers = [threading.Thread(target=jobs_thread, args=(name,)) for name in JOBS]
    for t in workers:
        t.start()
    started.wait(timeout=30)
    deploys = [threading.Thread(target=deploy) for _ in range(2)]
    for t in deploys:
        t.start()
    for t in workers + deploys:
        t.join(timeout=300)
    # Then nothing failed
    assert errors == []
    # and every occurrence of every job ran once and succeeded: no run lost
    for name in JOBS:
        assert [r.status for r in outcomes[name]] == [Status.SUCCEEDED] * OCCURRENCES, name
    rows = conn.execute("""SELECT job_name, status, count(*) AS n FROM cron_job_logs
                           GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
    assert [(r["job_name"], r["status"], r["n"]) for r in rows] == [
        (name, "succeeded", OCCURRENCES) for name in sorted(JOBS)
    ]
    # and the two deploys together applied each new versioned file exactly once; the edited
    # function file came with the whole set of function files (re-applied together, in order)
    names = [name for names in applied for name in names]
    assert sorted(n for n in names if n.startswith("V")) == ["V900__deploy_under_load.sql", "V901__deploy_next.sql"]
    function_files = sorted(p.name for p in functions.glob("*.sql"))
    assert sorted(set(n for n in names if not n.startswith("V"))) == function_files
    assert [r["deploy"] for r in conn.execute("SELECT deploy FROM deploy_marker ORDER BY 1").fetchall()] == [1, 2]
    recorded = conn.execute("""SELECT version, count(*) AS n FROM schema_migrations
                               WHERE version IN ('V900', 'V901') GROUP BY 1 ORDER BY 1""").fetchall()
    assert [(r["version"], r["n"]) for r in recorded] == [("V900", 1), ("V901", 1)]
    # and the job function replaced while its job ran is recorded at its new version
    edited = next(m for m in discover(versioned, functions) if m.version == "R:cleanup_expired_sessions.sql")
    assert (
        conn.execute("SELECT checksum FROM schema_migrations WHERE version = %s", (edited.version,)).fetchone()[
            "checksum"
        ]
        == edited.checksum
    )
    assert conn.execute("SELECT count(*) AS n FROM cron_job_logs WHERE status = 'running'").fetchone()["n"] == 0
    # and the deploy really happened under load: runs were in progress while V900 was being applied
    during = conn.execute("""
        SELECT count(*) AS n FROM cron_job_logs l
         WHERE l.started_at < (SELECT applied_at FROM schema_migrations WHERE version = 'V901')
           AND l.finished_at > (SELECT applied_at FROM schema_migrations WHERE version = 'V900')""").fetchone()["n"]
    assert during >= 1


def test_a_migration_waiting_for_a_long_job_does_not_fail_either(conn, db_url, runner_on, new_migrations):
    """The other order: a job holds its locks while a deploy arrives; the deploy waits, the job commits."""
    runner_on(db_url)
    versioned, functions = new_migrations
    holder = connect(db_url)
    # Given a job's transaction in progress, holding a lock on users (as a long update would)
    holder.execute("BEGIN")
    holder.execute("UPDATE users SET username = username")
    applied: list[list[str]] = []
    errors: list[BaseException] = []

    def deploy() -> None:
        try:
            with connect(db_url) as migrator:
                applied.append(migrate(migrator, discover(versioned, functions)))
        except BaseException as exc:
            errors.append(exc)

    # When a deploy starts, it waits for that transaction ...
    thread = threading.Thread(target=deploy)
    thread.start()
    for _ in range(100):
        waiting = conn.execute("""SELECT count(*) AS n FROM pg_stat_activity
                                  WHERE wait_event_type = 'Lock' AND datname = current_database()""").fetchone()["n"]
        if waiting:
            break
        threading.Event().wait(0.05)
    assert waiting == 1
    # ... and a scheduled run meanwhile is unaffected when it does not need the locked table
    job = registry.get("cleanup-expired-stories")
    assert run(RunRequest(job=job, as_of=START, trigger=Trigger.SCHEDULE)).status is Status.SUCCEEDED
    holder.execute("COMMIT")
    holder.close()
    thread.join(timeout=60)
    # Then the deploy went through once the job committed
    assert errors == []
    assert applied == [
        ["V900__deploy_under_load.sql", "V901__deploy_next.sql", *sorted(p.name for p in functions.glob("*.sql"))]
    ]
