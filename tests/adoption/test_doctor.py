"""``jobctl doctor``: a read-only look at DATABASE_URL; exit 0 when migrate would succeed, 1 when not."""

from __future__ import annotations

import json
import os

import psycopg
import pytest
from typer.testing import CliRunner

from jobctl.cli import app
from shared import registry
from shared.db import connect
from tests.adoption.pgcron import apply_app_schema, cron_url, migrate_all, schedule_guide_jobs
from tests.conftest import pooled

__all__ = ["cron_url"]  # a fixture, imported for pytest

cli = CliRunner()


def doctor(url: str, *args: str):
    return cli.invoke(app, ["doctor", *args], env={"DATABASE_URL": url})


def relations(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace")}


def test_on_a_new_app_database_it_says_what_migrate_creates_and_changes_nothing(empty_db_url):
    # Given a database with the app's tables only: the jobs layer not migrated yet
    apply_app_schema(empty_db_url)
    before = relations(empty_db_url)
    # When doctor looks
    result = doctor(empty_db_url, "--json")
    # Then migrate would succeed, every migration is pending and the guide's objects would be created
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["migrate_would"] == "succeed"
    assert report["server"]["supported"] and report["server"]["version_num"] >= 150000
    trial = report["guide_objects"]
    assert trial["previously_migrated"] is False and trial["trial"] == "rolled back"
    assert len(trial["pending"]) > 0
    objects = {o["name"]: o for o in trial["objects"]}
    assert objects["cron_job_logs"] == {
        "name": "cron_job_logs",
        "kind": "table",
        "found": False,
        "migrate_will": "created",
    }
    assert {o["migrate_will"] for o in objects.values()} == {"created"}
    assert report["pg_cron"]["installed"] is False
    # And nothing was left behind: the trial was rolled back
    assert relations(empty_db_url) == before


def test_on_a_migrated_database_nothing_is_pending_and_the_objects_are_kept(db_url, conn):
    conn.execute(
        "INSERT INTO cron_job_logs (job_name, status, trigger, as_of, finished_at, execution_time_ms) "
        "VALUES ('x', 'succeeded', 'sql', now(), now(), 1)"
    )
    report = json.loads(doctor(db_url, "--json").stdout)
    assert report["ok"] and report["guide_objects"]["pending"] == []
    objects = {o["name"]: o for o in report["guide_objects"]["objects"]}
    assert objects["cron_job_logs"]["migrate_will"] == "kept as is"
    assert all(o["found"] for o in objects.values())
    assert report["privileges"]["create_in_public"] is True
    role = report["job_role"]
    assert role["exists"] and role["executes_job_functions"] == f"{len(registry.JOBS)}/{len(registry.JOBS)}"
    # the human form says the same
    human = doctor(db_url)
    assert human.exit_code == 0 and "migrate would succeed" in human.stdout


def test_it_exits_1_and_says_why_when_migrate_would_refuse(db_url, conn):
    # Given a database where an applied migration no longer matches its file
    conn.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 'V009'")
    result = doctor(db_url, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["migrate_would"] == "refuse" and not report["ok"]
    assert any("was changed after it was applied" in p for p in report["problems"])
    human = doctor(db_url)
    assert human.exit_code == 1 and "migrate would refuse" in human.stdout


def test_the_pg_cron_jobs_that_run_a_registry_job_are_listed_and_the_apps_own_left_alone(cron_url):
    migrate_all(cron_url)
    with connect(cron_url) as conn:
        schedule_guide_jobs(conn)
    report = json.loads(doctor(cron_url, "--json").stdout)
    cron = report["pg_cron"]
    assert cron["installed"] is True
    assert sorted(j["job"] for j in cron["registry_jobs"]) == sorted(registry.BY_NAME)
    assert [j["jobname"] for j in cron["other_jobs"]] == ["purge-old-drafts"]
    assert any("pg_cron runs 11 registry job(s)" in w for w in report["warnings"])
    human = doctor(cron_url)
    assert "pg_cron jobs that run a registry job" in human.stdout and human.exit_code == 0


def test_a_direct_connection_is_not_taken_for_a_pooler(db_url):
    if os.environ.get("TEST_POOLER_URL"):
        pytest.skip("this run goes through a pooler")
    assert json.loads(doctor(db_url, "--json").stdout)["pooler"]["transaction_pooler"] is False


def test_a_transaction_mode_pgbouncer_is_detected(db_url):
    if not os.environ.get("TEST_POOLER_URL"):
        pytest.skip("needs TEST_POOLER_URL (scripts/test-pg15 runs pgbouncer in transaction mode)")
    assert pooled(db_url) == db_url  # the test database is reached through the pooler
    pooler = json.loads(doctor(db_url, "--json").stdout)["pooler"]
    assert pooler["transaction_pooler"] is True, pooler
    assert pooler["evidence"]
