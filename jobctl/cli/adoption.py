"""Commands for adopting a guide-era database: ``doctor`` and ``cutover`` (docs/moving-from-pg-cron.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from jobctl import output
from jobctl.cli.common import JsonOpt, connect, database_url, errors, exit_if_failed

app = typer.Typer()

PG_CRON_TWICE = (
    "warning: pg_cron and EventBridge both schedule {jobs}: the runner leaves their occurrences to "
    "pg_cron until `jobctl cutover` (docs/moving-from-pg-cron.md)"
)


@app.command()
@errors
def doctor(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check the database before migrating and cutting over; change nothing. Exit 1 if migrate would refuse.

    Server and pooler, the contract's gaps, the guide-era objects and what migrate does to
    each (tried in a transaction that is rolled back), pg_cron's jobs, the current user's
    privileges, the jobs' role, what Supabase's API roles can reach.
    """
    from jobctl import doctor_view
    from shared import doctor as manager

    report = manager.diagnose(database_url(ctx))
    if as_json:
        output.print_json(report.to_dict())
    else:
        doctor_view.render(report)
    exit_if_failed(not report.ok)


@app.command()
@errors
def cutover(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
    undo: Annotated[
        bool, typer.Option("--undo", help="Schedule the unscheduled pg_cron jobs again, exactly as they were.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Unschedule the pg_cron jobs that run a registry job (recorded, so --undo restores them).

    Run it once the EventBridge rules are deployed (or deploy with -c pgCronCutover=true);
    see docs/moving-from-pg-cron.md. Other pg_cron jobs are left alone. Idempotent.
    """
    from shared import cutover as manager

    with connect(ctx) as conn:
        result = (manager.undo if undo else manager.cut_over)(conn, dry_run=dry_run)
    if as_json:
        output.print_json(result.to_dict())
        return
    if result.jobs:
        columns = ["job", "jobname", "schedule", "command", "database", "active"]
        columns += ["restored_at"] if undo else ["cut_at"]
        output.print_records(result.message, [{**r, "job": r["registry_job"]} for r in result.jobs], columns)
    else:
        print(result.message)
    if result.left_alone:
        output.note("left alone: " + ", ".join(str(r["jobname"] or r["jobid"]) for r in result.left_alone))


def pg_cron_also_schedules(url: str | None, rules: list[dict[str, Any]]) -> list[str]:
    """The jobs whose deployed rule is enabled while an active pg_cron job still runs them (for status)."""
    enabled = {r["job"] for r in rules if r["state"] == "ENABLED"}
    if not url or not enabled:
        return []
    from shared import cutover as manager
    from shared.db import connect as db_connect

    try:
        with db_connect(url) as conn:
            return [job for job in manager.both_schedule(conn) if job in enabled]
    except Exception:
        return []  # status already says when the database is not reachable
