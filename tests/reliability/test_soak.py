"""The chaos soak: all schedules over N days on two identical seeded databases, once cleanly and
once with faults, every run delivered to the Lambda handler as AWS delivers it. At the end:

- every occurrence succeeded exactly once, and its work was committed exactly once, by the run
  that recorded the success (``soak_executions``, written in the job's own transaction);
- the application tables are equal row for row, and no notification was sent twice;
- every fault kind was observably injected at least a minimum number of times (the evidence
  and the run log show it happened, not merely that it was planned), at least one occurrence
  was re-driven from the dead-letter queue, and every fault left a row saying what happened.

``make test`` runs a small soak (3 days, 300 users, one fault seed) and checks that the soak
fails when its fault plan is empty or a fault kind stops being injected; ``make soak``
(``--soak``) runs 14 days with 1,000 users for several seeds. See chaos.py for the fault model.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from jobctl.databases import drop_database, with_database
from jobctl.schedules import occurrences
from jobctl.seed import seed
from shared import registry, schedule_state, watchdog
from shared.db import connect
from shared.observability import logger
from tests.conftest import create_database_from_template
from tests.factories import utc
from tests.reliability import chaos
from tests.reliability.chaos import Report, Simulation, applicable, assert_faults_observed, differences, snapshot

SMALL = {"start": utc(2026, 10, 31), "days": 3, "users": 300, "seeds": [7], "per_job": 2.0, "minimum": 1}
# Monday 19 October to Sunday 1 November 2026: two Sundays (weekly reports) and a 1st (monthly jobs)
LONG = {"start": utc(2026, 10, 19), "days": 14, "users": 1000, "seeds": [11, 23, 42], "per_job": 4.0, "minimum": 2}
# the smallest window that still holds every kind of fault: for the soak's own failure tests
TINY = {"start": utc(2026, 10, 31), "days": 1, "users": 60, "seeds": [7], "per_job": 1.0, "minimum": 1}


@pytest.fixture
def quiet_logger():
    """The runner logs every run at INFO; thousands of lines are noise here."""
    level = logger.log_level
    logger.setLevel("WARNING")
    yield
    logger.setLevel(level)


@pytest.fixture
def twin_databases(admin_url, template_db):
    """Two fresh migrated databases, dropped afterwards."""
    names = [create_database_from_template(admin_url, template_db) for _ in range(2)]
    yield [with_database(admin_url, n) for n in names]
    for n in names:
        drop_database(admin_url, n)


def seeded(url: str, users: int, start) -> None:
    with connect(url) as conn:
        seed(conn, users=users, as_of=start, seed=5)


def run_soak(urls, admin_url, server, runner_on, size: dict, fault_seed: int, plan=None) -> tuple[Report, Report]:
    """The clean and the faulty simulation of ``size``'s window, then every check."""
    clean_url, faulty_url = urls
    start, days = size["start"], size["days"]
    for url in urls:
        seeded(url, size["users"], start)
    runner_on(clean_url)
    clean = Simulation(clean_url, admin_url, traffic=chaos.traffic).run(start, days)
    runner_on(faulty_url)
    faulty = Simulation(
        faulty_url,
        admin_url,
        server=server,
        seed=fault_seed,
        traffic=chaos.traffic,
        per_job=size["per_job"],
        minimum=size["minimum"],
    ).run(start, days, plan=plan)
    verify(clean_url, faulty_url, start, days, faulty, kinds=applicable(server), minimum=size["minimum"])
    return clean, faulty


def verify(clean_url: str, faulty_url: str, start, days: int, report: Report, *, kinds, minimum: int) -> None:
    plan = {(o.job, o.at) for o in occurrences(start, start + timedelta(days=days))}
    with connect(faulty_url) as conn, connect(clean_url) as clean_conn:
        for c in (conn, clean_conn):
            # Then every occurrence succeeded exactly once in each database; nothing is left running
            done = c.execute("""SELECT job_name, as_of, count(*) AS n, min(request_id) AS request_id
                                  FROM cron_job_logs WHERE status = 'succeeded' AND NOT forced
                                 GROUP BY 1, 2""").fetchall()
            missing = plan - {(r["job_name"], r["as_of"]) for r in done}
            assert not missing, [
                (
                    m,
                    [
                        (r["status"], r["request_id"], r["error_message"])
                        for r in c.execute(
                            "SELECT * FROM cron_job_logs WHERE job_name = %s AND as_of = %s ORDER BY id", m
                        )
                    ],
                )
                for m in sorted(missing)
            ]
            assert {(r["job_name"], r["as_of"]) for r in done} == plan
            assert [r for r in done if r["n"] != 1] == []
            assert c.execute("SELECT count(*) AS n FROM cron_job_logs WHERE status = 'running'").fetchone()["n"] == 0
            # and its work took effect exactly once: only the run that recorded the success committed any
            succeeded_by = {(r["job_name"], r["as_of"]): [r["request_id"]] for r in done}
            committed = chaos.executions(c)
            doubled = {k: v for k, v in committed.items() if v != succeeded_by.get(k)}
            assert not doubled, f"work committed by other runs than the successful one: {doubled}"
            assert set(committed) == plan
        # the clean run needed nothing but one succeeded run per occurrence
        assert (
            clean_conn.execute("SELECT count(*) AS n FROM cron_job_logs WHERE status <> 'succeeded'").fetchone()["n"]
            == 0
        )
        # and no notification was sent twice, and the same ones were sent
        per_key = "SELECT user_id, kind, dedup_key, count(*) AS n FROM notifications GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        faulty_notes = conn.execute(per_key).fetchall()
        assert [r for r in faulty_notes if r["n"] != 1] == []
        assert faulty_notes == clean_conn.execute(per_key).fetchall()
        assert len(faulty_notes) > 0
        # and every fault left a row that says what happened, and every kind really happened
        assert_faults_observed(conn, report, kinds, minimum)
    # and the application tables are equal, row for row (ids compared by insertion rank)
    diff = differences(snapshot(clean_url), snapshot(faulty_url))
    assert diff == {}, f"the faulty database differs from the clean one: {diff}"


def summary(clean: Report, faulty: Report) -> str:
    return (
        f"clean: {clean.occurrences} occurrences in {clean.seconds:.1f} s; faulty: {faulty.attempts} attempts "
        f"for {faulty.deliveries} deliveries in {faulty.seconds:.1f} s, faults {faulty.fault_counts()}, "
        f"{len(faulty.redrives)} DLQ re-drives, {len(faulty.catchups)} watchdog catch-ups, "
        f"{faulty.skipped_returns} skipped"
    )


def test_small_chaos_soak(twin_databases, admin_url, embedded_server, runner_on, quiet_logger, capsys):
    started = time.monotonic()
    clean, faulty = run_soak(twin_databases, admin_url, embedded_server, runner_on, SMALL, SMALL["seeds"][0])
    with capsys.disabled():
        print(f"\nsmall soak ({time.monotonic() - started:.1f} s in all): {summary(clean, faulty)}")


def test_the_soak_fails_with_an_empty_fault_plan(twin_databases, admin_url, embedded_server, runner_on, quiet_logger):
    # Given a soak whose fault plan is empty: every run succeeds, every table matches
    with pytest.raises(AssertionError, match="fault kinds not observably injected"):
        run_soak(twin_databases, admin_url, embedded_server, runner_on, TINY, TINY["seeds"][0], plan={})


def test_the_soak_fails_when_a_fault_kind_is_no_longer_injected(
    twin_databases, admin_url, embedded_server, runner_on, quiet_logger, monkeypatch
):
    # Given the terminate fault broken so that it kills nothing (its run goes on and succeeds)
    monkeypatch.setattr(chaos.Terminate, "during_work", lambda self, sim, inj, conn: None)
    with pytest.raises(AssertionError, match="terminate on"):
        run_soak(twin_databases, admin_url, embedded_server, runner_on, TINY, TINY["seeds"][0])


@pytest.mark.soak
@pytest.mark.timeout(3600)  # about a minute a seed on an idle machine; ten times that on a busy one
@pytest.mark.parametrize("fault_seed", LONG["seeds"])
def test_long_chaos_soak(fault_seed, twin_databases, admin_url, embedded_server, runner_on, quiet_logger, capsys):
    started = time.monotonic()
    clean, faulty = run_soak(twin_databases, admin_url, embedded_server, runner_on, LONG, fault_seed)
    with capsys.disabled():
        print(f"\nlong soak seed {fault_seed} ({time.monotonic() - started:.1f} s in all): {summary(clean, faulty)}")


# --------------------------------------------------------------------------- schedules that heal themselves


def test_outages_pauses_long_holders_and_late_dependencies_heal_without_a_dead_letter(
    db_url, admin_url, runner_on, quiet_logger, capsys
):
    # Given three days of schedules with, scripted around the runs (the watchdog checks every 15 min):
    start = utc(2026, 10, 30)
    reminders = registry.get("send-daily-reminders")
    scenario = chaos.Scenario(
        outages=[
            # no delivery at all (nor the watchdog) around midnight: calculate-daily-metrics at 01:00 then
            # arrives before the streaks it needs, which the watchdog only catches up after the outage
            (utc(2026, 10, 30, 0, 0), utc(2026, 10, 30, 1, 0)),
            # five and a half hours without a delivery: Saturday evening to Sunday 1 November 01:30
            (utc(2026, 10, 31, 20, 0), utc(2026, 11, 1, 1, 30)),
        ],
        actions=[
            # reminders paused for a day (no catch-up on resume): Saturday's 18:00 is not expected
            (utc(2026, 10, 31, 12), lambda sim, at: schedule_state.pause(sim.ctl(), reminders, by="ops", at=at)),
            (utc(2026, 11, 1, 10), lambda sim, at: schedule_state.resume(sim.ctl(), reminders, by="ops", at=at)),
            # a hand run of database-maintenance holds its slot from 02:58 and dies at its Lambda timeout
            # (10.5 min: longer than Lambda's retries of the 03:00 delivery it overlaps)
            (utc(2026, 11, 1, 2, 58), lambda sim, at: sim.hold("database-maintenance", at)),
        ],
    )
    seeded(db_url, 200, start)
    runner_on(db_url)
    report = Simulation(db_url, admin_url, traffic=chaos.traffic).run_scenario(start, 3, scenario)
    with connect(db_url) as conn:

        def runs(job: str, at) -> list[tuple[str, str]]:
            rows = conn.execute(
                "SELECT status, trigger, metadata FROM cron_job_logs WHERE job_name = %s AND as_of = %s ORDER BY id",
                (job, at),
            ).fetchall()
            return [(r["status"], r["trigger"]) for r in rows]

        # Then nothing was raised: no Lambda retry, no dead-letter message, for any of it
        assert report.raised == 0 and report.redrives == []
        # And nothing is left unrun or missed, and nothing is lost silently: the watchdog, looking at the
        # end of the window, finds every occurrence it expects settled
        found = watchdog.check(conn, start + timedelta(days=3), since=start - watchdog.DEPLOY_SLACK)
        assert found.due == [], found.due
        # And every occurrence ran at most once, its work committed once, by the run that recorded it
        done = conn.execute(
            "SELECT job_name, as_of, count(*) AS n, min(request_id) AS rid FROM cron_job_logs "
            "WHERE status = 'succeeded' GROUP BY 1, 2"
        ).fetchall()
        assert [r for r in done if r["n"] != 1] == []
        committed = chaos.executions(conn)
        assert committed == {(r["job_name"], r["as_of"]): [r["rid"]] for r in done}
        # And: the metrics waited for their streaks instead of failing, and ran once the watchdog caught up
        waited = [("skipped", "schedule"), ("succeeded", "catchup")]
        assert runs("calculate-daily-metrics", utc(2026, 10, 30, 1)) == waited
        assert runs("update-user-streaks", utc(2026, 10, 30)) == [("succeeded", "catchup")]
        # the long outage: each daily, weekly and monthly occurrence in it ran once, caught up
        for job, at in [
            ("reset-daily-challenges", utc(2026, 11, 1)),
            ("update-user-streaks", utc(2026, 11, 1)),
            ("calculate-daily-metrics", utc(2026, 11, 1, 1)),
            ("send-weekly-reports", utc(2026, 11, 1)),
        ]:
            assert runs(job, at) == [("succeeded", "catchup")], job
        # the hourly jobs caught up only their latest occurrence; the earlier ones are superseded, not missed
        assert runs("update-leaderboards", utc(2026, 11, 1, 1)) == [("succeeded", "catchup")]
        assert runs("update-leaderboards", utc(2026, 10, 31, 23)) == []
        # the paused day's reminders were skipped (the delivery says why) and not caught up; the next day's ran
        assert runs("send-daily-reminders", utc(2026, 10, 31, 18)) == [("skipped", "schedule")]
        assert runs("send-daily-reminders", utc(2026, 11, 1, 18)) == [("succeeded", "schedule")]
        # the 03:00 maintenance overlapped the hand run: it waited (buffer_one), and ran once that run died
        assert runs("database-maintenance", utc(2026, 11, 1, 3)) == waited
    with capsys.disabled():
        print(
            f"\nhealing soak: {report.occurrences} deliveries, {len(report.catchups)} caught up by the watchdog, "
            f"{report.raised} raised, {report.seconds:.1f} s"
        )
