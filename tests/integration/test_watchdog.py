"""The watchdog and its catch-up against a real Postgres: which occurrences are unsettled, which run."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import psycopg
import pytest

from shared import catchup, naming, registry, schedule_state, watchdog
from shared.observability import metrics
from shared.watchdog import check
from tests.factories import utc

# Monday 2026-03-02 12:20 UTC. Grace for a 60 s job: 90 s Lambda timeout + 10 min = 11.5 min,
# so the latest occurrences that must have run are those at or before 12:08:30.
NOW = utc(2026, 3, 2, 12, 20)

LATEST_AT_NOW = {
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
DAILY = ("reset-daily-challenges", "update-user-streaks", "calculate-daily-metrics", "send-daily-reminders")


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
    metadata: dict | None = None,
) -> None:
    conn.execute(
        """INSERT INTO cron_job_logs (job_name, status, trigger, as_of, dry_run, started_at, finished_at,
                                      deadline_at, metadata)
           VALUES (%(job)s, %(status)s, %(trigger)s, %(as_of)s, %(dry)s, %(as_of)s,
                   CASE WHEN %(status)s = 'running' THEN NULL
                        ELSE %(as_of)s::timestamptz + interval '1 s' END,
                   CASE WHEN %(status)s = 'running' THEN clock_timestamp() + interval '1 hour'
                        ELSE %(as_of)s::timestamptz + interval '90 s' END, %(meta)s)""",
        {
            "job": job_name,
            "status": status,
            "trigger": trigger,
            "as_of": as_of,
            "dry": dry_run,
            "meta": json.dumps(metadata or {}),
        },
    )


def due(found: watchdog.Check, *, in_window: bool) -> dict[str, list[datetime]]:
    out: dict[str, list[datetime]] = {}
    for d in found.due:
        if d.in_window is in_window:
            out.setdefault(d.job, []).append(d.as_of)
    return out


@pytest.fixture
def deployed(conn: psycopg.Connection) -> psycopg.Connection:
    deployed_at(conn, utc(2026, 1, 1))
    return conn


def test_an_empty_run_log_catches_up_the_window_and_reports_older_misses(deployed):
    # Given no run at all since the deploy in January
    # When the watchdog looks at 12:20 on Monday 2 March
    found = check(deployed, NOW)
    # Then every job's latest due occurrence is to be caught up, but yesterday's 18:00 reminders
    # (a reminder is for its day: a 5 h window) ...
    in_window = {job: ats[-1] for job, ats in due(found, in_window=True).items()}
    assert in_window == {k: v for k, v in LATEST_AT_NOW.items() if k != "send-daily-reminders"}
    # ... and only it: the daily jobs' window is 24 h, the superseding jobs keep the latest
    assert all(len(ats) == 1 for ats in due(found, in_window=True).values())
    assert due(found, in_window=False)["send-daily-reminders"][-1] == utc(2026, 3, 1, 18)
    # And the older occurrences of the non-superseding jobs are missed (reported, alarmed), 35 days back
    missed = due(found, in_window=False)
    assert missed["reset-daily-challenges"] == [utc(2026, 1, 27) + timedelta(days=i) for i in range(34)]
    assert not {"cleanup-expired-stories", "update-leaderboards", "cleanup-expired-sessions"} & set(missed)
    assert found.missed_counts()["reset-daily-challenges"] == 34
    assert found.missed_counts()["cleanup-expired-sessions"] == 0


def test_a_weekly_job_catches_up_two_days_and_a_daily_one_a_day(deployed):
    # Tuesday 3 March 01:00: Sunday's weekly report (49 h ago) is outside its 2-day window
    found = check(deployed, utc(2026, 3, 3, 1, 0))
    assert "send-weekly-reports" not in due(found, in_window=True)
    assert due(found, in_window=False)["send-weekly-reports"][-1] == utc(2026, 3, 1)
    # while on Monday it is inside
    assert due(check(deployed, NOW), in_window=True)["send-weekly-reports"] == [utc(2026, 3, 1)]


def test_rows_that_settle_an_occurrence_and_rows_that_leave_it_to_run(deployed):
    # Given each job's latest occurrence logged in a settling way, or in a way that leaves it to run
    settling = {
        "reset-daily-challenges": {"status": "succeeded", "trigger": "manual"},
        "update-user-streaks": {"status": "failed"},
        "calculate-daily-metrics": {"status": "running"},
        "update-leaderboards": {"status": "skipped", "metadata": {"overlap": "skip"}},
        "cleanup-expired-stories": {"status": "succeeded", "trigger": "catchup"},
    }
    unsettling = {
        "send-daily-reminders": {"status": "skipped", "metadata": {"deferred": "overlap"}},
        "cleanup-expired-sessions": {"status": "failed", "metadata": {"abandoned": True}},
        "process-moderation-queue": {"status": "succeeded", "trigger": "sql"},
        "send-weekly-reports": {"status": "succeeded", "dry_run": True},
        "cleanup-inactive-accounts": {"status": "skipped", "metadata": {"deferred": "dependency"}},
        "database-maintenance": {"status": "failed", "metadata": {"deferred": "batches"}},  # cut off, to resume
    }
    for name, how in {**settling, **unsettling}.items():
        log_run(deployed, name, LATEST_AT_NOW[name], **how)
    # Then only the unsettled ones (and the job left alone) are still to run
    found = check(deployed, NOW)
    assert {d.job for d in found.due if d.as_of == LATEST_AT_NOW[d.job]} == set(unsettling)


def test_an_occurrence_is_not_due_until_its_grace_period_has_passed(deployed):
    # Given the 11:45 session cleanup ran, and the 12:00 one has not (yet)
    log_run(deployed, "cleanup-expired-sessions", utc(2026, 3, 2, 11, 45))
    # When the watchdog looks at 12:11:29 (12:00 + 90 s timeout + 10 min is 12:11:30), 11:45 is the latest: it ran
    assert "cleanup-expired-sessions" not in due(check(deployed, utc(2026, 3, 2, 12, 11, 29)), in_window=True)
    # And one second after the grace period, 12:00 is due
    late = check(deployed, utc(2026, 3, 2, 12, 11, 30))
    assert due(late, in_window=True)["cleanup-expired-sessions"] == [utc(2026, 3, 2, 12)]


def test_the_long_job_gets_its_longer_grace(deployed):
    # database-maintenance: 630 s Lambda timeout + 10 min = 20.5 min after 03:00 on the 1st
    early = check(deployed, utc(2026, 3, 1, 3, 20, 29))
    assert due(early, in_window=True).get("database-maintenance") is None
    assert due(check(deployed, utc(2026, 3, 1, 3, 20, 30)), in_window=True)["database-maintenance"] == [
        utc(2026, 3, 1, 3)
    ]


def test_occurrences_before_the_first_deploy_or_since_are_not_expected(conn):
    # Given the system was first deployed (migrated) at 11:45 today
    deployed_at(conn, utc(2026, 3, 2, 11, 45))
    found = check(conn, NOW)
    # Then the hourly and 15-minute jobs' 12:00 occurrence (after deploy + 10 min slack) is expected, nothing else
    assert set(due(found, in_window=True)) == {
        "cleanup-expired-stories",
        "update-leaderboards",
        "cleanup-expired-sessions",
        "process-moderation-queue",
    }
    assert found.missed == []
    # And --since overrides the deploy time (an operator saying "we were down from T")
    assert due(check(conn, NOW, since=utc(2026, 3, 1)), in_window=True)["reset-daily-challenges"] == [utc(2026, 3, 2)]


def test_a_paused_job_is_expected_nowhere_while_paused_and_a_resume_can_catch_up(deployed):
    job = registry.get("reset-daily-challenges")
    # Given the job paused on 27 Feb 12:00 and resumed on 2 Mar at 12:10 (without catch-up)
    schedule_state.pause(deployed, job, by="alice", note="INC-7", at=utc(2026, 2, 27, 12))
    schedule_state.resume(deployed, job, by="alice", at=utc(2026, 3, 2, 12, 10))
    # Then the occurrences of 28 Feb .. 2 Mar are not expected; 27 Feb and before still are (missed)
    found = check(deployed, NOW)
    assert "reset-daily-challenges" not in due(found, in_window=True)
    assert due(found, in_window=False)["reset-daily-challenges"][-1] == utc(2026, 2, 27)
    # And while it is paused, the watchdog says so and expects nothing after the pause
    schedule_state.pause(deployed, job, by="bob", note="again", at=utc(2026, 3, 2, 12, 15))
    assert check(deployed, NOW).paused == {"reset-daily-challenges": "again"}
    # And a resume with --catch-up makes the occurrences of the pause it ends expected again (inside the window)
    other = registry.get("update-user-streaks")
    schedule_state.pause(deployed, other, by="bob", at=utc(2026, 2, 27, 12))
    schedule_state.resume(deployed, other, by="bob", catch_up=True, at=utc(2026, 3, 2, 12, 10))
    found = check(deployed, NOW)
    assert due(found, in_window=True)["update-user-streaks"] == [utc(2026, 3, 2)]
    assert utc(2026, 3, 1) in due(found, in_window=False)["update-user-streaks"]


def test_a_pause_until_expects_the_occurrences_after_it(deployed):
    job = registry.get("cleanup-expired-sessions")
    schedule_state.pause(deployed, job, by="alice", until=utc(2026, 3, 2, 11, 50), at=utc(2026, 3, 2, 10))
    found = check(deployed, NOW)
    assert due(found, in_window=True)["cleanup-expired-sessions"] == [utc(2026, 3, 2, 12)]
    assert "cleanup-expired-sessions" not in found.paused
    schedule_state.pause(deployed, job, by="alice", until=utc(2026, 3, 2, 13), at=utc(2026, 3, 2, 11, 50))
    assert "cleanup-expired-sessions" not in due(check(deployed, NOW), in_window=True)


def test_after_a_reschedule_the_new_times_are_expected(deployed):
    # Given send-daily-reminders moved from 18:00 to 20:00 on 1 March at 19:00
    job = registry.get("send-daily-reminders")
    schedule_state.reschedule(deployed, job, "0 20 * * *", by="alice", note="later", at=utc(2026, 3, 1, 19))
    found = check(deployed, utc(2026, 3, 1, 22))
    # Then the 18:00 occurrence (before the change) and the 20:00 one (after) are due, not 20:00 before
    assert due(found, in_window=True)["send-daily-reminders"] == [utc(2026, 3, 1, 18), utc(2026, 3, 1, 20)]
    assert schedule_state.state(deployed, job).cron == "0 20 * * *"


def test_the_watchdog_check_writes_nothing(deployed):
    check(deployed, NOW)
    assert deployed.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 0


def test_catch_up_after_an_outage_gives_one_succeeded_run_per_occurrence_in_the_window(conn, db_url, monkeypatch):
    # Given a database where nothing ran since Saturday 28 Feb 10:00 (an outage with no deliveries)
    monkeypatch.setenv("DATABASE_URL", db_url)
    from shared import db

    db.reset_connection()
    since = utc(2026, 2, 28, 10)
    try:
        # When the watchdog catches up at 12:20 on Monday 2 March
        found = check(conn, NOW, since=since)
        outcomes = catchup.catch_up(found, after_run=metrics.clear_metrics)
        # Then each occurrence inside its window ran once, in order, with trigger catchup
        assert [o.status for o in outcomes] == ["succeeded"] * len(found.to_catch_up)
        assert [(o.job, o.as_of) for o in outcomes] == sorted(
            ((o.job, o.as_of) for o in outcomes),
            key=lambda p: (p[1], [j.name for j in registry.JOBS].index(p[0])),
        )
        for name in DAILY:
            job = registry.get(name)
            rows = conn.execute(
                "SELECT as_of, trigger FROM cron_job_logs WHERE job_name = %s AND status = 'succeeded' ORDER BY as_of",
                (name,),
            ).fetchall()
            expected = [at for at in watchdog.expected(job, [], NOW, since) if at >= NOW - job.catchup_window]
            assert [(r["as_of"], r["trigger"]) for r in rows] == [(at, "catchup") for at in expected], name
        # And a second check finds nothing to catch up, and a second catch-up runs nothing
        again = check(conn, NOW, since=since)
        assert again.to_catch_up == [] and catchup.catch_up(again) == []
    finally:
        db.reset_connection()


def test_catch_up_leaves_a_paused_or_running_job_and_respects_the_time_left(deployed, db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    schedule_state.pause(deployed, registry.get("update-leaderboards"), by="a", at=utc(2026, 3, 2, 12, 5))
    log_run(deployed, "cleanup-expired-stories", utc(2026, 3, 2, 11), status="running")
    found = check(deployed, NOW)
    outcomes = {o.job: o for o in catchup.catch_up(found, remaining_s=lambda: 20.0)}
    assert outcomes["update-leaderboards"].status == "paused"
    assert outcomes["cleanup-expired-stories"].status == "running"
    # (20 s left, minus the reserve, is less than any job's budget)
    assert {o.status for name, o in outcomes.items() if name not in found.paused and name not in found.busy} == {
        "later"
    }
    assert deployed.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 1


def test_metrics_missed_runs_per_job_and_a_heartbeat(capsys):
    # Given one job with two misses and one without
    missed = {"update-leaderboards": 2, "cleanup-expired-sessions": 0}
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
        (naming.METRIC_MISSED, (("job", "update-leaderboards"), svc)): [2.0],
        (naming.METRIC_MISSED, (("job", "cleanup-expired-sessions"), svc)): [0.0],
        (watchdog.METRIC_HEARTBEAT, (svc,)): [1.0],
    }
