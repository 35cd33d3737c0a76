"""No occurrence lost or run twice across the switch from pg_cron, and back.

Both schedulers run for real, in real time, around the switch: pg_cron (Debian's
postgresql-15-cron) fires the guide's function every minute, and the local scheduler
fires the same job every minute through the Lambda handler, as the deployed rules would
once they exist. Before the cutover pg_cron runs each occurrence and the runner records
its delivery as skipped; from the cutover's minute the runner runs them; after the undo,
pg_cron again. Every minute has exactly one successful run. About three minutes long.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from jobctl import local, schedules
from shared import cutover, registry
from shared.db import connect
from tests.adoption.pgcron import cron_url, migrate_all

__all__ = ["cron_url"]  # a fixture, imported for pytest

JOB = registry.get("cleanup-expired-sessions")
EVERY_MINUTE = dataclasses.replace(JOB, cron="* * * * *")
MINUTE = timedelta(minutes=1)


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def test_both_schedulers_around_the_switch_run_each_occurrence_exactly_once(cron_url):
    migrate_all(cron_url)
    conn = connect(cron_url)

    def rows(where: str, **params: Any) -> list[dict[str, Any]]:
        return conn.execute(
            "SELECT job_name, trigger, status, as_of, date_trunc('minute', as_of) AS minute, error_message "
            f"FROM cron_job_logs WHERE replace(job_name, '_', '-') = %(job)s AND {where} ORDER BY id",
            {"job": JOB.name, **params},
        ).fetchall()

    def pg_cron_success(at: datetime | None = None) -> list[dict[str, Any]]:
        if at is None:
            return rows("trigger = 'sql' AND status = 'succeeded'")
        return rows("trigger = 'sql' AND status = 'succeeded' AND date_trunc('minute', as_of) = %(at)s", at=at)

    def runner_row(at: datetime, status: str) -> list[dict[str, Any]]:
        return rows("trigger = 'local' AND as_of = %(at)s AND status = %(status)s", at=at, status=status)

    # Given the guide's pg_cron job, firing every minute, and the rules (the local scheduler)
    conn.execute("SELECT cron.schedule(%s, '* * * * *', %s)", (JOB.name, f"SELECT {JOB.sql_function}()"))
    scheduler = schedules.Scheduler(
        lambda name, event: local.invoke_handler(name, event, database_url=cron_url), jobs=[EVERY_MINUTE]
    )
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    try:
        # While pg_cron schedules the job, it runs the occurrence and the runner defers
        first = wait_for("pg_cron's first run", pg_cron_success, 150)[0]["minute"]
        wait_for(f"the runner's delivery of {first}", lambda: runner_row(first, "skipped"), 30)

        # When the cutover runs: the hand-over is the next minute
        cut = cutover.cut_over(conn)
        assert [r["cut_at"] for r in cut.jobs] == [first + MINUTE]
        wait_for(f"the runner's run of {first + MINUTE}", lambda: runner_row(first + MINUTE, "succeeded"), 90)

        # When it is undone: pg_cron runs the occurrences from the next minute again
        undone = cutover.undo(conn)
        assert [r["restored_at"] for r in undone.jobs] == [first + 2 * MINUTE]
        wait_for(f"pg_cron's run of {first + 2 * MINUTE}", lambda: pg_cron_success(first + 2 * MINUTE), 90)
        wait_for(
            f"the runner's delivery of {first + 2 * MINUTE}", lambda: runner_row(first + 2 * MINUTE, "skipped"), 30
        )
    finally:
        scheduler.stop()
        thread.join(timeout=60)

    # Then each of the three minutes ran exactly once, by the scheduler that owned it
    succeeded = rows("status = 'succeeded' AND as_of >= %(first)s", first=first)
    by_minute = {m: [r["trigger"] for r in succeeded if r["minute"] == m] for m in {r["minute"] for r in succeeded}}
    assert by_minute[first] == ["sql"]
    assert by_minute[first + MINUTE] == ["local"]
    assert by_minute[first + 2 * MINUTE] == ["sql"]
    assert all(len(triggers) == 1 for triggers in by_minute.values()), by_minute
    assert rows("status IN ('failed', 'running')") == []
    conn.close()
