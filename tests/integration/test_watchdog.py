"""The missed-run watchdog against a real Postgres: which occurrences left no run row."""

from __future__ import annotations

import json
from datetime import datetime

import psycopg
import pytest

from shared import naming, registry, watchdog
from shared.watchdog import missed_runs
from tests.factories import utc

# Monday 2026-03-02 12:20 UTC. Grace for a 60 s job: 90 s Lambda timeout + 10 min = 11.5 min,
# so the latest occurrences that must have run are those at or before 12:08:30.
NOW = utc(2026, 3, 2, 12, 20)

EXPECTED_AT_NOW = {
    "reset-daily-challenges": utc(2026, 3, 2, 0, 0),
    "update-user-streaks": utc(2026, 3, 2, 0, 0),
    "calculate-daily-metrics": utc(2026, 3, 2, 1, 0),
    "send-daily-reminders": utc(2026, 3, 1, 18, 0),
    "cleanup-expired-stories": utc(2026, 3, 2, 12, 0),
    "update-leaderboards": utc(2026, 3, 2, 12, 0),
    "cleanup-expired-sessions": utc(2026, 3, 2, 12, 0),
    "process-moderation-queue": utc(2026, 3, 2, 12, 0),
    "send-weekly-reports": utc(2026, 3, 1, 0, 0),  # Sunday
    "cleanup-inactive-accounts": utc(2026, 3, 1, 2, 0),
    "database-maintenance": utc(2026, 3, 1, 3, 0),
}


def deployed_at(conn: psycopg.Connection, at: datetime) -> None:
    """Pretend the system's first deploy (first migration) happened at ``at``."""
    conn.execute("UPDATE schema_migrations SET applied_at = %(at)s", {"at": at})


def log_run(
    conn: psycopg.Connection,
    job_name: str,
    as_of: datetime,
    *,
    status: str = "succeeded",
    trigger: str = "schedule",
    dry_run: bool = False,
) -> None:
    conn.execute(
        """INSERT INTO cron_job_logs (job_name, status, trigger, as_of, dry_run, started_at, finished_at,
                                      deadline_at)
           VALUES (%(job)s, %(status)s, %(trigger)s, %(as_of)s, %(dry)s, %(as_of)s,
                   CASE WHEN %(status)s = 'running' THEN NULL
                        ELSE %(as_of)s::timestamptz + interval '1 s' END,
                   %(as_of)s::timestamptz + interval '90 s')""",
        {"job": job_name, "status": status, "trigger": trigger, "as_of": as_of, "dry": dry_run},
    )


@pytest.fixture
def deployed(conn: psycopg.Connection) -> psycopg.Connection:
    deployed_at(conn, utc(2026, 1, 1))
    return conn


def test_an_empty_run_log_misses_every_jobs_latest_due_occurrence(deployed):
    # Given no run at all since the deploy in January
    # When the watchdog looks at 12:20 on Monday 2 March
    # Then every job's latest occurrence past its grace period is reported missed
    assert missed_runs(deployed, NOW) == EXPECTED_AT_NOW
    assert set(EXPECTED_AT_NOW) == set(registry.BY_NAME)


def test_a_row_in_any_status_from_any_real_trigger_counts_as_run(deployed):
    # Given each job's due occurrence logged, in every status and by every non-SQL trigger
    statuses = ["succeeded", "failed", "skipped", "running"]
    triggers = ["schedule", "manual", "local"]
    for i, (name, as_of) in enumerate(EXPECTED_AT_NOW.items()):
        log_run(deployed, name, as_of, status=statuses[i % 4], trigger=triggers[i % 3])
    # Then nothing is missed
    assert missed_runs(deployed, NOW) == dict.fromkeys(EXPECTED_AT_NOW)


def test_sql_runs_dry_runs_and_other_occurrences_do_not_count(deployed):
    # Given: a hand-typed SQL run of the occurrence, a dry run of it, and the previous occurrence
    log_run(deployed, "cleanup-expired-sessions", utc(2026, 3, 2, 12, 0), trigger="sql")
    log_run(deployed, "update-leaderboards", utc(2026, 3, 2, 12, 0), trigger="manual", dry_run=True)
    log_run(deployed, "cleanup-expired-stories", utc(2026, 3, 2, 11, 0))
    # And a real run for another job's occurrence
    log_run(deployed, "process-moderation-queue", utc(2026, 3, 2, 12, 0))
    missed = missed_runs(deployed, NOW)
    # Then the first three are still missed, the fourth is not
    assert missed["cleanup-expired-sessions"] == utc(2026, 3, 2, 12, 0)
    assert missed["update-leaderboards"] == utc(2026, 3, 2, 12, 0)
    assert missed["cleanup-expired-stories"] == utc(2026, 3, 2, 12, 0)
    assert missed["process-moderation-queue"] is None


def test_an_occurrence_is_not_due_until_its_grace_period_has_passed(deployed):
    # Given the 11:45 session cleanup ran, and the 12:00 one has not (yet)
    log_run(deployed, "cleanup-expired-sessions", utc(2026, 3, 2, 11, 45))
    # When the watchdog looks at 12:11:29 (12:00 + 90 s timeout + 10 min is 12:11:30)
    # Then 11:45 is the occurrence checked, and it ran
    assert missed_runs(deployed, utc(2026, 3, 2, 12, 11, 29))["cleanup-expired-sessions"] is None
    # And one second after the grace period, 12:00 is due and missed
    late = missed_runs(deployed, utc(2026, 3, 2, 12, 11, 30))
    assert late["cleanup-expired-sessions"] == utc(2026, 3, 2, 12)


def test_the_long_job_gets_its_longer_grace(deployed):
    # database-maintenance: 630 s Lambda timeout + 10 min = 20.5 min after 03:00 on the 1st
    assert missed_runs(deployed, utc(2026, 3, 1, 3, 20, 29))["database-maintenance"] == utc(2026, 2, 1, 3)
    assert missed_runs(deployed, utc(2026, 3, 1, 3, 20, 30))["database-maintenance"] == utc(2026, 3, 1, 3)


def test_occurrences_before_the_first_deploy_are_not_expected(conn):
    # Given the system was first deployed (migrated) at 11:45 today
    deployed_at(conn, utc(2026, 3, 2, 11, 45))
    missed = missed_runs(conn, NOW)
    # Then the hourly and 15-minute jobs' 12:00 occurrence (after deploy + 10 min slack) is expected
    assert {name for name, at in missed.items() if at is not None} == {
        "cleanup-expired-stories",
        "update-leaderboards",
        "cleanup-expired-sessions",
        "process-moderation-queue",
    }
    # And the daily, weekly and monthly ones, due before the deploy, are not
    assert missed["reset-daily-challenges"] is None
    assert missed["database-maintenance"] is None


def test_an_occurrence_within_the_deploy_slack_is_not_expected(conn):
    # Given a deploy at 11:55: the 12:00 rules may not have existed yet when 12:00 fired
    deployed_at(conn, utc(2026, 3, 2, 11, 55))
    assert all(at is None for at in missed_runs(conn, NOW).values())


def test_the_watchdog_writes_nothing(deployed):
    before = deployed.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"]
    missed_runs(deployed, NOW)
    assert deployed.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == before == 0


def test_metrics_one_missed_runs_value_per_job_and_a_heartbeat(capsys):
    # Given one job missed and one not
    missed = {"update-leaderboards": utc(2026, 3, 2, 12), "cleanup-expired-sessions": None}
    # When the metrics are emitted
    watchdog.emit_metrics(missed, naming.METRICS_NAMESPACE)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    # Then each EMF blob carries the dimensions the alarms use
    emitted = {}
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == naming.METRICS_NAMESPACE
        (metric,) = directive["Metrics"]
        dims = {k: blob[k] for k in directive["Dimensions"][0]}
        emitted[(metric["Name"], tuple(sorted(dims.items())))] = blob[metric["Name"]]
    svc = ("service", naming.SERVICE)
    assert emitted == {
        (naming.METRIC_MISSED, (("job", "update-leaderboards"), svc)): [1.0],
        (naming.METRIC_MISSED, (("job", "cleanup-expired-sessions"), svc)): [0.0],
        (watchdog.METRIC_HEARTBEAT, (svc,)): [1.0],
    }
