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

from jobctl.schedules import occurrences
from jobctl.seed import seed
from shared.db import connect
from shared.observability import logger
from tests.conftest import create_database_from_template, drop_database, with_database
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
@pytest.mark.parametrize("fault_seed", LONG["seeds"])
def test_long_chaos_soak(fault_seed, twin_databases, admin_url, embedded_server, runner_on, quiet_logger, capsys):
    started = time.monotonic()
    clean, faulty = run_soak(twin_databases, admin_url, embedded_server, runner_on, LONG, fault_seed)
    with capsys.disabled():
        print(f"\nlong soak seed {fault_seed} ({time.monotonic() - started:.1f} s in all): {summary(clean, faulty)}")
