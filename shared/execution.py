"""Executing a job's SQL, by the registry's mode.

Every job's logic is a SQL function ``job_<name>(p_as_of timestamptz, p_<param> ...)``
returning a JSON summary of counts. This module calls it the way the job's mode needs
and hands the final transaction to ``finish`` (the runner's hook that marks the run
succeeded), so the work and the success record commit together.

- TRANSACTIONAL: one transaction; the work, then ``finish``; commit.
- BATCHED: the function does one bounded batch and reports ``*_remaining``; batches
  repeat, each committed on its own, while work remains and the budget allows. Each batch's
  counts add up (cleanup-expired-stories: what is left waits for the next occurrence).
  A ``resumable`` job's function keeps its occurrence's progress and reports the whole
  occurrence's counts so far: the last batch's summary is the run's. If its budget runs
  out with work left, the committed batches stay and the run fails (:class:`BatchesLeft`),
  so it is not recorded succeeded and the next delivery resumes after them.
- MAINTENANCE: VACUUM (ANALYZE) of the job's ``vacuum_tables`` in autocommit (Postgres
  refuses VACUUM inside a transaction block or a function), on the schema owner's
  connection when one is configured (Postgres 15/16 let only a table's owner vacuum it),
  then the function's transactional part on the job's own connection. Tables this session
  may not vacuum are skipped and reported apart, with the reason (Postgres itself only warns).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from psycopg import sql

from shared.db import Conn, close_quietly, open_maintenance_connection, transaction
from shared.errors import JobTimeout
from shared.queries import load
from shared.registry import Job, Mode

Summary = dict[str, Any]
"""Counts (ints, each also a metric), and for maintenance the skipped tables' reasons."""
Finish = Callable[[Summary], None]

#: Below this many milliseconds left, a batched job stops starting new batches.
MIN_BATCH_BUDGET_MS = 2_000


class BatchesLeft(JobTimeout):
    """A resumable batched job reached its time budget with work left (its batches are kept)."""


def _no_finish(_: Summary) -> None:
    return None


def remaining_ms(deadline: float) -> int:
    """Milliseconds left until ``deadline`` (a ``time.monotonic()`` value)."""
    return int((deadline - time.monotonic()) * 1000)


def call_work(conn: Conn, job: Job, as_of: datetime, params: Mapping[str, Any] | None = None) -> Summary:
    """``SELECT job_<name>(p_as_of => %(as_of)s, p_x => %(x)s, ...)`` in the current transaction."""
    values = {**job.params, **(params or {})}
    args = [sql.SQL("p_as_of => {}").format(sql.Placeholder("as_of"))] + [
        sql.SQL("{} => {}").format(sql.Identifier(f"p_{name}"), sql.Placeholder(name)) for name in values
    ]
    query = sql.SQL("SELECT {}({}) AS summary").format(sql.Identifier(job.work_function), sql.SQL(", ").join(args))
    row = conn.execute(query, {"as_of": as_of, **values}).fetchone()
    assert row is not None
    return dict(row["summary"] or {})


def execute(
    conn: Conn, job: Job, as_of: datetime, *, deadline: float, dry_run: bool = False, finish: Finish = _no_finish
) -> Summary:
    """Run ``job`` for ``as_of`` within ``deadline``; ``finish`` runs inside the final transaction."""
    if job.mode is Mode.BATCHED:
        return _batched(conn, job, as_of, deadline=deadline, dry_run=dry_run, finish=finish)
    if job.mode is Mode.MAINTENANCE:
        return _maintenance(conn, job, as_of, deadline=deadline, dry_run=dry_run, finish=finish)
    with transaction(conn, timeout_ms=remaining_ms(deadline), rollback=dry_run):
        summary = call_work(conn, job, as_of)
        finish(summary)
    return summary


def _batched(conn: Conn, job: Job, as_of: datetime, *, deadline: float, dry_run: bool, finish: Finish) -> Summary:
    totals: Summary = {}
    batches = 0
    while True:
        with transaction(conn, timeout_ms=remaining_ms(deadline), rollback=dry_run):
            batch = call_work(conn, job, as_of)
            batches += 1
            left = sum(v for k, v in batch.items() if k.endswith("_remaining"))
            if job.resumable:
                # the occurrence's counts so far, earlier deliveries' batches included
                totals = {k: v for k, v in batch.items() if not k.endswith("_remaining")}
                worked = True  # each batch moves the occurrence's cursor on
            else:
                for key, value in batch.items():
                    # counts add up over batches; "*_remaining" is what is left after the last one
                    totals[key] = value if key.endswith("_remaining") else totals.get(key, 0) + value
                totals["batches"] = batches
                worked = any(v for k, v in batch.items() if not k.endswith("_remaining") and k != "batches")
            more = left > 0 and worked and not dry_run
            out_of_time = remaining_ms(deadline) < MIN_BATCH_BUDGET_MS
            if not more or (out_of_time and not job.resumable):
                finish(totals)
                return totals
        if out_of_time:  # resumable, with work left: this batch's progress is committed
            raise BatchesLeft(
                f"{job.name}: stopped at its time budget with work left after {batches} batch(es) of "
                f"occurrence {as_of.isoformat()}; they are committed, and the next delivery of the "
                "occurrence (a retry, the watchdog's catch-up) resumes after them"
            )


def _maintenance(conn: Conn, job: Job, as_of: datetime, *, deadline: float, dry_run: bool, finish: Finish) -> Summary:
    vacuumed, skipped = vacuum(conn, job.vacuum_tables, dry_run=dry_run)
    with transaction(conn, timeout_ms=remaining_ms(deadline), rollback=dry_run):
        summary = call_work(conn, job, as_of)
        summary["tables_vacuumed"] = vacuumed
        summary["tables_skipped"] = len(skipped)
        if skipped:
            summary["skipped"] = skipped
        finish(summary)
    return summary


def vacuum(conn: Conn, tables: tuple[str, ...], *, dry_run: bool = False) -> tuple[int, dict[str, str]]:
    """VACUUM (ANALYZE) each of ``tables`` that the session may vacuum; return how many were
    vacuumed (a dry run: would be) and the others with the reason. Runs on the schema owner's
    connection when one is configured, else on ``conn``; either way in autocommit, each VACUUM
    its own implicit transaction, as Postgres requires."""
    owner = open_maintenance_connection()
    session = owner or conn
    try:
        rows = session.execute(load("maintenance")["vacuum_permissions"], {"tables": list(tables)}).fetchall()
        skipped = {r["table_name"]: r["refused"] for r in rows if r["refused"]}
        allowed = [r["table_name"] for r in rows if not r["refused"]]
        if not dry_run:
            for table in allowed:
                session.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        return len(allowed), skipped
    finally:
        close_quietly(owner)
