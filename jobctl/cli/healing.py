"""Job state and catch-up: ``pause``, ``resume``, ``reschedule``, ``watchdog``, ``backfill``, ``describe``.

``pause``/``resume``/``reschedule`` record who, when and why in the database
(``job_schedule_state``), which the runner, the watchdog and the local scheduler read, and
act on the deployed EventBridge rule unless ``--local``. Without ``--local`` the database is
``--database-url`` / ``DATABASE_URL`` when given (the deployed one), else none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import typer

from jobctl import healing, healing_view, local, output
from jobctl.cli.common import (
    JobArg,
    JobsOpt,
    JsonOpt,
    PrefixOpt,
    VerboseOpt,
    connect,
    database_url,
    errors,
    exit_if_failed,
    job_arg,
    select_jobs,
    state,
    time_opt,
)
from shared import schedule_state
from shared.cron import to_eventbridge
from shared.db import connect as db_connect
from shared.errors import ValidationError
from shared.events import iso

app = typer.Typer()

NoteOpt = Annotated[str | None, typer.Option("--note", help="Why (recorded with who and when).")]
LocalOpt = Annotated[
    bool,
    typer.Option("--local", help="The database only (--database-url, DATABASE_URL or the embedded one); no AWS call."),
]
NowOpt = Annotated[str | None, typer.Option("--now", help="Look as if it were this time (ISO-8601, UTC).")]


def _state_url(ctx: typer.Context, local_only: bool) -> str | None:
    """The database to record state in: any (embedded too) with --local, else only one given."""
    return database_url(ctx) if local_only else state(ctx).get("database_url")


def _done(verb: str, job: str, recorded: Any, rule: Any, as_json: bool, now: datetime) -> None:
    job_state = None if recorded is None else recorded.to_dict(now)
    if as_json:
        keys = {"rule": "Name", "state": "State", "schedule": "ScheduleExpression", "arn": "Arn"}
        out = {k: (rule or {}).get(f) for k, f in keys.items()}
        output.print_json({**out, "job": job, "job_state": job_state})
    else:
        healing_view.print_state(verb, job, job_state, rule)


@app.command()
@errors
def pause(
    ctx: typer.Context,
    job: JobArg,
    note: NoteOpt = None,
    until: Annotated[str | None, typer.Option("--until", help="End the pause by itself at this time (UTC).")] = None,
    local_only: LocalOpt = False,
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Pause a job: no scheduled run, and the watchdog expects none, until resumed (or --until).

    Disables the deployed rule too (with --until the rule stays enabled and the runner skips
    its deliveries until then, so the pause ends by itself).
    """
    name, now, ends = job_arg(job).name, local.utcnow(), time_opt(until)
    if ends is not None and ends <= now:
        raise ValidationError(f"--until {iso(ends)} is not in the future")
    url = _state_url(ctx, local_only)
    rule = None
    if not local_only and ends is None:
        from jobctl import aws

        rule = aws.pause(aws.client("events"), name, prefix=prefix)
    recorded = None
    if url:
        with db_connect(url) as conn:
            recorded = schedule_state.pause(conn, job_arg(name), by=healing.operator(), note=note, until=ends)
    _done("paused", name, recorded, rule, as_json, now)


@app.command()
@errors
def resume(
    ctx: typer.Context,
    job: JobArg,
    catch_up: Annotated[
        bool, typer.Option("--catch-up", help="Catch up the occurrences missed while paused (inside the window).")
    ] = False,
    note: NoteOpt = None,
    local_only: LocalOpt = False,
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Resume a paused job (enables the deployed rule too); --catch-up runs what it missed meanwhile.

    On AWS the watchdog runs those catch-ups at its next check; with --local they run now.
    """
    job_, now = job_arg(job), local.utcnow()
    url = _state_url(ctx, local_only)
    rule = None
    if not local_only:
        from jobctl import aws

        rule = aws.resume(aws.client("events"), job_.name, prefix=prefix)
    recorded = None
    if url:
        with db_connect(url) as conn:
            recorded = schedule_state.resume(conn, job_, by=healing.operator(), note=note, catch_up=catch_up)
    _done("resumed", job_.name, recorded, rule, as_json, now)
    if catch_up and local_only and url:
        found, outcomes = healing.run_watchdog(url, local.utcnow(), catch_up=True, jobs=(job_,), verbose=verbose)
        if not as_json:
            healing_view.print_watchdog(found, outcomes, True)
        exit_if_failed(any(o.status == "failed" for o in outcomes))


@app.command()
@errors
def reschedule(
    ctx: typer.Context,
    job: JobArg,
    cron: Annotated[str, typer.Argument(help="New schedule, 5-field Unix cron in UTC, e.g. '0 20 * * *'.")],
    note: NoteOpt = None,
    local_only: LocalOpt = False,
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Change a job's schedule: the deployed rule's, and the one the watchdog and the local scheduler expect.

    A hand change: change the registry to make it permanent.
    """
    job_, now = job_arg(job), local.utcnow()
    to_eventbridge(cron)  # validated before anything changes
    url = _state_url(ctx, local_only)
    rule = None
    if not local_only:
        from jobctl import aws

        rule = aws.reschedule(aws.client("events"), job_.name, cron, prefix=prefix)
    recorded = None
    if url:
        with db_connect(url) as conn:
            recorded = schedule_state.reschedule(conn, job_, cron, by=healing.operator(), note=note)
    _done("rescheduled", job_.name, recorded, rule, as_json, now)
    if not as_json:
        output.note(
            f"note: a hand change (the registry says {job_.cron!r}). A `cdk deploy` that updates "
            "this rule puts the registry's schedule back; one that does not leaves this change in place as drift, "
            f"which `jobctl status` flags. To keep {cron!r}, change shared/registry.py and deploy."
        )


@app.command()
@errors
def watchdog(
    ctx: typer.Context,
    now: NowOpt = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Occurrences are expected from this time (default: the first deploy)."),
    ] = None,
    catch_up: Annotated[bool, typer.Option("--catch-up", help="Run the occurrences inside their window.")] = False,
    job: JobsOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The watchdog's check, here: occurrences that left no run; --catch-up runs those inside their window.

    Exit 1 when an occurrence is missed (outside its window) or a catch-up failed.
    """
    moment = time_opt(now) or local.utcnow()
    begin = time_opt(since)

    def progress(outcome: Any) -> None:
        if verbose:
            output.note(f"{outcome.status} {outcome.job} {output.fmt(outcome.as_of)}")

    found, outcomes = healing.run_watchdog(
        database_url(ctx),
        moment,
        since=begin,
        catch_up=catch_up,
        jobs=select_jobs(job),
        on_outcome=progress,
        verbose=verbose,
    )
    if as_json:
        output.print_json({**found.to_dict(), "caught_up": [o.to_dict() for o in outcomes]})
    else:
        healing_view.print_watchdog(found, outcomes, catch_up)
    exit_if_failed(bool(found.missed) or any(o.status == "failed" for o in outcomes))


def _invoker(
    job: str, *, on_aws: bool, prefix: str, url: str | None, verbose: bool
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """How backfill runs one event: the deployed function, or the handler here."""
    if on_aws:
        from jobctl import aws

        client = aws.client("lambda")
        return lambda event: aws.invoke(client, job, event, prefix=prefix)
    assert url is not None
    return lambda event: local.invoke_handler(job, event, database_url=url, verbose=verbose)


@app.command()
@errors
def backfill(
    ctx: typer.Context,
    job: JobArg,
    start: Annotated[str, typer.Option("--from", help="First occurrence time (ISO-8601, UTC; inclusive).")],
    end: Annotated[str, typer.Option("--to", help="Last occurrence time (inclusive).")],
    plan_only: Annotated[bool, typer.Option("--plan", help="List what would run; run nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Run occurrences that already succeeded too.")] = False,
    on_aws: Annotated[bool, typer.Option("--on-aws", help="Invoke the deployed function for each.")] = False,
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run every occurrence of JOB in [--from, --to] that has not succeeded, in order, and summarise.

    Locally through the handler (the embedded database or --database-url), or with --on-aws
    through the deployed function (the database, when given, says what already succeeded;
    without one the runner skips those). A second identical call runs nothing.
    """
    job_ = job_arg(job)
    first, last = local.parse_time(start), local.parse_time(end)
    url = database_url(ctx) if not on_aws else state(ctx).get("database_url")
    if url:
        with db_connect(url) as conn:
            plan = healing.plan_backfill(conn, job_, first, last, force=force)
    else:
        plan = healing.plan_backfill(None, job_, first, last, force=force)
    if plan_only:
        if as_json:
            output.print_json(plan.to_dict())
        else:
            healing_view.print_backfill_plan(plan)
        return
    invoke = _invoker(job_.name, on_aws=on_aws, prefix=prefix, url=url, verbose=verbose)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=output.stderr(), transient=True) as bar:
        task = bar.add_task(f"backfill {job_.name}", total=len(plan.todo))
        healing.run_backfill(
            plan,
            invoke,
            lambda r: bar.update(task, advance=1, description=f"{job_.name} {output.fmt(r['as_of'])} {r['status']}"),
        )
    if as_json:
        output.print_json(plan.to_dict())
    else:
        healing_view.print_backfill_summary(plan)
    exit_if_failed(plan.counts()["failed"] > 0)


@app.command()
@errors
def describe(
    ctx: typer.Context,
    job: JobArg,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=100, help="How many last and next.")] = 5,
    now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One job: its policies (overlap, catch-up window), state (paused, with its note), last and next
    occurrences, pending catch-ups."""
    job_ = job_arg(job)
    moment = time_opt(now) or local.utcnow()
    with connect(ctx) as conn:
        described = healing.describe(conn, job_, moment, count)
    output.show(described, as_json, healing_view.print_describe)
