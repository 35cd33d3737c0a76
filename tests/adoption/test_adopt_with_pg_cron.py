"""Issue 11 end to end on the real pg_cron: a guide-era database is checked, migrated, cut over,
runs every job, is handed back to pg_cron and cut over again, and loses nothing.

The database is what the guide left (tests/adoption/guide_era_app.sql and guide_era_jobs.sql:
a uuid-keyed app with row-level security, the older run log with months of history, the
guide's views and void functions) with the eleven jobs scheduled in pg_cron as the guide
does, plus one of the app's own pg_cron jobs, which must be left alone throughout.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from jobctl.cli import app
from shared import cutover, registry
from shared.db import connect, reset_connection
from shared.events import RunRequest, Trigger
from shared.runner import Status, run
from tests.adoption.conftest import GUIDE_ERA_APP, GUIDE_ERA_JOBS, apply_sql_file
from tests.adoption.pgcron import cron_jobs, cron_url, schedule_guide_jobs

__all__ = ["cron_url"]  # a fixture, imported for pytest

cli = CliRunner()


def jobctl(url: str, *args: str) -> Any:
    return cli.invoke(app, list(args), env={"DATABASE_URL": url})


@pytest.fixture(autouse=True)
def no_quiet_wait(monkeypatch):
    # what moves and what is kept, not when (tests/adoption/test_switch.py runs the wait)
    monkeypatch.setattr(cutover, "_quiet_moment", lambda conn: None)


def history(conn) -> Counter:
    """The run log as (job name, started at), with multiplicity."""
    return Counter(
        (r["job_name"], r["started_at"])
        for r in conn.execute("SELECT job_name::text AS job_name, started_at FROM cron_job_logs").fetchall()
    )


def test_a_guide_era_database_is_adopted_cut_over_undone_and_cut_over_again(cron_url, monkeypatch):
    conn = connect(cron_url)
    # Given the guide-era database, its jobs in pg_cron and the app's own pg_cron job
    apply_sql_file(conn, GUIDE_ERA_APP)
    apply_sql_file(conn, GUIDE_ERA_JOBS)
    schedule_guide_jobs(conn)
    before_history = history(conn)
    before_cron = cron_jobs(conn)
    assert len(before_history) > 0

    # When doctor looks: migrate would succeed; it names what migrate does and what pg_cron runs
    result = jobctl(cron_url, "doctor", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    objects = {o["name"]: o for o in report["guide_objects"]["objects"]}
    assert objects["cron_job_logs"]["found"] and objects["cron_job_logs"]["migrate_will"].startswith("upgraded")
    assert sorted(j["job"] for j in report["pg_cron"]["registry_jobs"]) == sorted(registry.BY_NAME)
    assert [j["jobname"] for j in report["pg_cron"]["other_jobs"]] == ["purge-old-drafts"]
    assert history(conn) == before_history and cron_jobs(conn) == before_cron  # doctor changed nothing

    # When it is migrated and cut over
    assert jobctl(cron_url, "migrate").exit_code == 0
    cut = json.loads(jobctl(cron_url, "cutover", "--json").stdout)
    assert sorted(j["registry_job"] for j in cut["jobs"]) == sorted(registry.BY_NAME)
    assert [r["jobname"] for r in cron_jobs(conn)] == ["purge-old-drafts"]

    # Then every job runs through the runner, scheduled, at the first occurrence it owns
    monkeypatch.setenv("DATABASE_URL", cron_url)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    reset_connection()
    owned_from = cut["jobs"][0]["cut_at"]
    as_of = conn.execute("SELECT %s::timestamptz AS t", (owned_from,)).fetchone()["t"]
    for job in registry.JOBS:
        result = run(RunRequest(job=job, as_of=as_of, trigger=Trigger.SCHEDULE))
        assert result.status is Status.SUCCEEDED, (job.name, result)
    reset_connection()

    # When the cutover is undone: pg_cron holds exactly what it held; then cut over again
    assert len(json.loads(jobctl(cron_url, "cutover", "--undo", "--json").stdout)["jobs"]) == len(registry.JOBS)
    assert cron_jobs(conn) == before_cron
    assert len(json.loads(jobctl(cron_url, "cutover", "--json").stdout)["jobs"]) == len(registry.JOBS)
    assert [r["jobname"] for r in cron_jobs(conn)] == ["purge-old-drafts"]

    # And nothing was lost: every history row is there, next to one succeeded run per job, but
    # for those database-maintenance pruned as older than its retention (the guide's monthly
    # clean-up of old logs)
    retention = timedelta(days=registry.get("database-maintenance").params["retention_days"])
    pruned = before_history - history(conn)
    assert pruned, "the history reaches back past the retention period, so maintenance prunes some"
    assert all(started < as_of - retention for _, started in pruned), pruned
    ran = conn.execute(
        "SELECT job_name, count(*) AS n FROM cron_job_logs WHERE trigger = 'schedule' AND status = 'succeeded' "
        "GROUP BY job_name"
    ).fetchall()
    assert {r["job_name"]: r["n"] for r in ran} == {job.name: 1 for job in registry.JOBS}
    conn.close()
