"""jobctl pause/resume/reschedule --local, watchdog, backfill and describe against a real Postgres."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from typer.testing import CliRunner

from jobctl.cli import app
from jobctl.schedules import Scheduler
from shared import registry
from tests.factories import utc

runner = CliRunner()

# Sunday 1 March 2026 22:00: every daily job's occurrence of the day is inside its window, as are
# Sunday's weekly report and the 1st's monthly jobs; nothing ran since 28 Feb 23:00 (an outage)
NOW = "2026-03-01T22:00:00Z"
SINCE = "2026-02-28T23:00:00Z"
DAILY = {
    "reset-daily-challenges": utc(2026, 3, 1, 0),
    "update-user-streaks": utc(2026, 3, 1, 0),
    "calculate-daily-metrics": utc(2026, 3, 1, 1),
    "send-daily-reminders": utc(2026, 3, 1, 18),
}


def jobctl(db_url: str, *args: str) -> Any:
    return runner.invoke(app, list(args), env={"DATABASE_URL": db_url})


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def succeeded(conn: Any, job: str) -> list[tuple]:
    rows = conn.execute(
        "SELECT as_of, trigger, forced FROM cron_job_logs WHERE job_name = %s AND status = 'succeeded' ORDER BY id",
        (job,),
    ).fetchall()
    return [(r["as_of"], r["trigger"], r["forced"]) for r in rows]


def test_watchdog_catch_up_after_an_outage_gives_one_success_per_occurrence_then_runs_nothing(db_url, conn):
    # Given an outage with no deliveries at all: the watchdog reports what is to catch up, runs nothing
    report = as_json(jobctl(db_url, "watchdog", "--now", NOW, "--since", SINCE, "--json"))
    pending = {(d["job"], d["as_of"]) for d in report["to_catch_up"]}
    assert {(job, at.isoformat().replace("+00:00", "Z")) for job, at in DAILY.items()} <= pending
    assert report["missed"] == [] and report["caught_up"] == []
    assert conn.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 0
    # When it catches up
    caught = as_json(jobctl(db_url, "watchdog", "--now", NOW, "--since", SINCE, "--catch-up", "--json"))
    # Then every occurrence inside its window ran once, and every daily job's log has one success per occurrence
    assert {(c["job"], c["as_of"]) for c in caught["caught_up"]} == pending
    assert {c["status"] for c in caught["caught_up"]} == {"succeeded"}
    assert caught["to_catch_up"] == [] and caught["missed"] == []
    for job, at in DAILY.items():
        assert succeeded(conn, job) == [(at, "catchup", False)], job
    # And a second identical call runs nothing
    again = as_json(jobctl(db_url, "watchdog", "--now", NOW, "--since", SINCE, "--catch-up", "--json"))
    assert again["caught_up"] == [] and again["to_catch_up"] == []


def test_watchdog_exits_1_on_a_miss_outside_the_window(db_url):
    # reminders of 1 March 18:00 are 18 h old at 12:00 on the 2nd: outside their 5 h window
    result = jobctl(
        db_url, "watchdog", "--now", "2026-03-02T12:00:00Z", "--since", SINCE, "--job", "send-daily-reminders"
    )
    assert result.exit_code == 1 and "Missed" in result.stdout and "send-daily-reminders" in result.stdout


def test_backfill_runs_what_has_not_succeeded_in_order_and_a_second_call_runs_nothing(db_url, conn):
    # Given one occurrence of the range already succeeded
    assert jobctl(db_url, "run", "reset-daily-challenges", "--as-of", "2026-02-26T00:00:00Z").exit_code == 0
    args = ("backfill", "reset-daily-challenges", "--from", "2026-02-25", "--to", "2026-02-28T00:00:00Z")
    # When the plan is asked for, nothing runs
    plan = as_json(jobctl(db_url, *args, "--plan", "--json"))
    assert plan["planned"] == ["2026-02-25T00:00:00+00:00", "2026-02-27T00:00:00+00:00", "2026-02-28T00:00:00+00:00"]
    assert len(succeeded(conn, "reset-daily-challenges")) == 1
    # When it runs: the three others, in order, and a summary
    done = as_json(jobctl(db_url, *args, "--json"))
    assert [r["status"] for r in done["results"]] == ["succeeded"] * 3
    assert done["summary"] == {
        "occurrences": 4,
        "already_succeeded": 1,
        "planned": 3,
        "ran": 3,
        "succeeded": 3,
        "failed": 0,
        "skipped": 0,
    }
    assert [at for at, _, _ in succeeded(conn, "reset-daily-challenges")] == [
        utc(2026, 2, 26),
        utc(2026, 2, 25),
        utc(2026, 2, 27),
        utc(2026, 2, 28),
    ]
    # And a second identical call runs nothing; --force runs them all again (recorded as forced)
    assert as_json(jobctl(db_url, *args, "--json"))["summary"]["ran"] == 0
    forced = as_json(jobctl(db_url, *args, "--force", "--json"))
    assert forced["summary"]["succeeded"] == 4
    assert sum(f for _, _, f in succeeded(conn, "reset-daily-challenges")) == 4
    # And the table form prints a summary line
    assert "backfill reset-daily-challenges: 4 occurrence(s) in range" in jobctl(db_url, *args).stdout


def test_backfill_refuses_a_reversed_or_future_range(db_url):
    reversed_ = jobctl(db_url, "backfill", "update-leaderboards", "--from", "2026-02-02", "--to", "2026-02-01")
    assert reversed_.exit_code == 2 and "is before --from" in reversed_.stderr
    future = jobctl(db_url, "backfill", "update-leaderboards", "--from", "2026-02-02", "--to", "2999-01-01")
    assert future.exit_code == 2 and "in the future" in future.stderr


def test_pause_resume_reschedule_locally_are_recorded_and_described(db_url, conn, tmp_path):
    # When an operator pauses a job locally with a note
    paused = as_json(jobctl(db_url, "pause", "send-daily-reminders", "--local", "--note", "INC-9 spam", "--json"))
    # Then the database records it (no rule was touched), and describe shows it
    assert paused["rule"] is None and paused["job_state"]["paused"] is True
    assert paused["job_state"]["note"] == "INC-9 spam" and "@" in paused["job_state"]["changed_by"]
    described = as_json(jobctl(db_url, "describe", "send-daily-reminders", "--json"))
    assert described["state"]["paused"] is True and described["state"]["note"] == "INC-9 spam"
    assert described["policy"]["overlap"] == "buffer_one" and described["policy"]["catchup_window"] == "5:00:00"
    assert described["next"] == []  # paused until resumed: nothing comes
    # And a scheduled delivery is skipped as paused
    event = {"detail-type": "Scheduled Event", "source": "jobctl.scheduler", "time": "2026-03-01T18:00:00Z"}
    (tmp_path / "event.json").write_text(json.dumps(event))
    delivered = as_json(
        jobctl(db_url, "run", "send-daily-reminders", "--event", str(tmp_path / "event.json"), "--json")
    )
    assert delivered["status"] == "skipped" and "paused by" in delivered["reason"]
    # When it is rescheduled and resumed
    rescheduled = as_json(jobctl(db_url, "reschedule", "send-daily-reminders", "0 20 * * *", "--local", "--json"))
    assert rescheduled["job_state"]["cron"] == "0 20 * * *"
    resumed = as_json(jobctl(db_url, "resume", "send-daily-reminders", "--local", "--json"))
    # Then it is active on the new schedule, and every change is in its history
    assert resumed["job_state"]["paused"] is False
    after = as_json(jobctl(db_url, "describe", "send-daily-reminders", "--json"))
    assert [c["action"] for c in after["changes"]] == ["pause", "reschedule", "resume"]
    assert all(at.endswith("T20:00:00+00:00") for at in after["next"]) and len(after["next"]) == 5
    # And a bad cron changes nothing
    bad = jobctl(db_url, "reschedule", "send-daily-reminders", "61 * * * *", "--local")
    assert bad.exit_code == 2
    assert as_json(jobctl(db_url, "describe", "send-daily-reminders", "--json"))["state"]["cron"] == "0 20 * * *"


def test_describe_lists_the_last_occurrences_with_their_runs(db_url):
    assert jobctl(db_url, "run", "update-leaderboards", "--as-of", "2026-03-01T21:00:00Z").exit_code == 0
    described = as_json(jobctl(db_url, "describe", "update-leaderboards", "--now", NOW, "-n", "2", "--json"))
    assert [(o["as_of"], o["runs"]) for o in described["last"]] == [
        ("2026-03-01T21:00:00+00:00", ["succeeded"]),
        ("2026-03-01T22:00:00+00:00", []),
    ]
    assert described["next"] == ["2026-03-01T23:00:00+00:00", "2026-03-02T00:00:00+00:00"]
    assert described["policy"]["overlap"] == "skip" and described["policy"]["catchup_latest_only"] is True
    table = jobctl(db_url, "describe", "update-leaderboards", "--now", NOW)
    assert table.exit_code == 0 and "overlap policy" in table.stdout and "skip" in table.stdout


def test_the_local_scheduler_fires_on_the_schedule_in_force():
    # Given a job rescheduled to 20:00 (the scheduler reads the schedule through cron_of)
    job = registry.get("send-daily-reminders")
    sched = Scheduler(lambda name, event: {}, jobs=[job], cron_of=lambda j: "0 20 * * *")
    # Then its next fire time is 20:00, not the registry's 18:00
    assert sched.next_due(utc(2026, 3, 1, 12)) == (utc(2026, 3, 1, 20), [job.name])
    assert Scheduler(lambda n, e: {}, jobs=[job]).next_due(utc(2026, 3, 1, 12))[0] == utc(2026, 3, 1, 18)
    assert timedelta(hours=2) == utc(2026, 3, 1, 20) - utc(2026, 3, 1, 18)
