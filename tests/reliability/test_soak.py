"""The chaos soak: all schedules over N days on two identical seeded databases, once cleanly and
once with faults; at the end the application tables are equal row for row, no notification was
sent twice, every occurrence succeeded exactly once, and every fault left a row saying what happened.

``make test`` runs a small soak (3 days, 300 users, one fault seed); ``make soak`` (``--soak``)
runs 14 days with 1,000 users for several seeds. See chaos.py for the fault model.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from jobctl.local import occurrences
from jobctl.seed import seed
from shared.db import connect
from shared.observability import logger
from tests.conftest import create_database_from_template, drop_database, with_database
from tests.factories import utc
from tests.reliability.chaos import FAILING, Report, Simulation, differences, snapshot, traffic

SMALL = {"start": utc(2026, 10, 31), "days": 3, "users": 300, "seeds": [7], "per_job": 2.0}
# Monday 19 October to Sunday 1 November 2026: two Sundays (weekly reports) and a 1st (monthly jobs)
LONG = {"start": utc(2026, 10, 19), "days": 14, "users": 1000, "seeds": [11, 23, 42], "per_job": 4.0}

KILLED = re.compile(r"terminat|closed the connection|could not be reached|administrator command|shut ?down")


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


def run_soak(urls, admin_url, server, runner_on, *, start, days, users, fault_seed, per_job) -> tuple[Report, Report]:
    clean_url, faulty_url = urls
    for url in urls:
        seeded(url, users, start)
    runner_on(clean_url)
    clean = Simulation(clean_url, admin_url, traffic=traffic).run(start, days)
    runner_on(faulty_url)
    caps = {"restart_between": 3, "restart_during": 3, "outage": 4}
    faulty = Simulation(
        faulty_url, admin_url, server=server, seed=fault_seed, traffic=traffic, per_job=per_job, caps=caps
    ).run(start, days)
    verify(clean_url, faulty_url, start, days, faulty)
    return clean, faulty


def verify(clean_url: str, faulty_url: str, start, days: int, report: Report) -> None:
    with connect(faulty_url) as conn, connect(clean_url) as clean_conn:
        # Then every occurrence succeeded exactly once in each database; nothing is left running
        plan = {(o.job, o.at) for o in occurrences(start, start + timedelta(days=days))}
        for c in (conn, clean_conn):
            done = c.execute("""SELECT job_name, as_of, count(*) AS n FROM cron_job_logs
                                WHERE status = 'succeeded' AND NOT forced GROUP BY 1, 2""").fetchall()
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
        # and every injected fault left a row that says what happened
        rows = {r["request_id"]: r for r in conn.execute("SELECT * FROM cron_job_logs").fetchall()}
        for fault in report.faults:
            check_fault(fault, [rows.get(rid) for rid in fault.request_ids])
    # and the application tables are equal, row for row (ids compared by insertion rank)
    diff = differences(snapshot(clean_url), snapshot(faulty_url))
    assert diff == {}, f"the faulty database differs from the clean one: {diff}"


def check_fault(fault, rows) -> None:
    where = f"{fault.kind} on {fault.job} at {fault.as_of:%Y-%m-%dT%H:%MZ}: {rows}"
    assert rows and all(r is not None for r in rows), where
    first = rows[0]
    message = first["error_message"] or ""
    if fault.kind == "duplicate":
        assert first["status"] == "skipped" and "already succeeded in run #" in message, where
    elif fault.kind == "concurrent":
        statuses = sorted(r["status"] for r in rows)
        assert statuses == ["skipped"] * (len(rows) - 1) + ["succeeded"], where
        assert all("duplicate" in r["error_message"] for r in rows if r["status"] == "skipped"), where
    elif fault.kind == "restart_between":
        assert first["status"] == "succeeded", where  # nothing failed: the runner reconnected
    elif fault.kind in FAILING and first["status"] == "skipped":
        # the attempt found its occurrence still held by an earlier attempt that died (abandoned, or cut
        # off by an outage) before that one's deadline: it did no work, and raised so Lambda retries
        assert message.startswith(
            f"duplicate delivery: occurrence {fault.as_of:%Y-%m-%dT%H:%M:%SZ} is already running"
        ), where
    elif fault.kind == "timeout":
        assert first["status"] == "failed" and "cancelled after reaching its time budget" in message, where
        assert first["metadata"]["error_type"] == "JobTimeout", where
    elif fault.kind in ("terminate", "restart_during"):
        assert first["status"] == "failed" and KILLED.search(message), where
    elif fault.kind in ("abandon", "outage"):
        # its row was never closed by its run; a later delivery closed it once its deadline passed
        assert first["status"] == "failed" and message.startswith("abandoned:"), where
        assert first["metadata"]["abandoned"] is True, where
    else:
        raise AssertionError(f"unchecked fault kind {fault.kind}")


def summary(clean: Report, faulty: Report) -> str:
    return (
        f"clean: {clean.occurrences} occurrences in {clean.seconds:.1f} s; faulty: {faulty.attempts} attempts "
        f"for {faulty.deliveries} deliveries in {faulty.seconds:.1f} s, faults {faulty.fault_counts()}, "
        f"{faulty.redrives} DLQ re-drives, {faulty.skipped_returns} skipped"
    )


def test_small_chaos_soak(twin_databases, admin_url, embedded_server, runner_on, quiet_logger, capsys):
    started = time.monotonic()
    clean, faulty = run_soak(
        twin_databases,
        admin_url,
        embedded_server,
        runner_on,
        start=SMALL["start"],
        days=SMALL["days"],
        users=SMALL["users"],
        fault_seed=SMALL["seeds"][0],
        per_job=SMALL["per_job"],
    )
    with capsys.disabled():
        print(f"\nsmall soak ({time.monotonic() - started:.1f} s in all): {summary(clean, faulty)}")


@pytest.mark.soak
@pytest.mark.parametrize("fault_seed", LONG["seeds"])
def test_long_chaos_soak(fault_seed, twin_databases, admin_url, embedded_server, runner_on, quiet_logger, capsys):
    started = time.monotonic()
    clean, faulty = run_soak(
        twin_databases,
        admin_url,
        embedded_server,
        runner_on,
        start=LONG["start"],
        days=LONG["days"],
        users=LONG["users"],
        fault_seed=fault_seed,
        per_job=LONG["per_job"],
    )
    with capsys.disabled():
        print(f"\nlong soak seed {fault_seed} ({time.monotonic() - started:.1f} s in all): {summary(clean, faulty)}")
