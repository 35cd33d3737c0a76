"""Commands: local runs through the Lambda handler (``list``, ``run``, ``simulate``, ``scheduler``)
and the run log (``logs``, ``stats``)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from jobctl import local, output, schedules
from jobctl.cli.common import (
    AsOfOpt,
    DryRunOpt,
    ForceOpt,
    JobArg,
    JobsOpt,
    JsonOpt,
    VerboseOpt,
    connect,
    database_url,
    errors,
    exit_if_failed,
    job_arg,
    select_jobs,
    time_opt,
)
from shared import registry, schedule_state
from shared.cron import next_fire_times, to_eventbridge
from shared.errors import ValidationError
from shared.events import iso

app = typer.Typer()


def describe_schedule(cron: str) -> str:
    from cron_descriptor import Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    return get_description(cron, options)


def job_rows(now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "job": job.name,
            "cron": job.cron,
            "eventbridge": to_eventbridge(job.cron),
            "schedule": describe_schedule(job.cron),
            "timeout_s": job.timeout_s,
            "depends_on": list(job.depends_on),
            "next_run": next_fire_times(job.cron, now)[0],
            "mode": job.mode.value,
            "description": job.description,
        }
        for job in registry.JOBS
    ]


@app.command("list")
@errors
def list_jobs(as_json: JsonOpt = False) -> None:
    """Every job: schedule, EventBridge form, plain English, timeout, dependencies, next run."""
    rows = job_rows(local.utcnow())
    output.show(rows, as_json, output.print_jobs)


def read_event(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read event file {str(path)!r}: {exc.strerror}") from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"event file {str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(event, dict):
        raise ValidationError(f"event file {str(path)!r} must hold a JSON object")
    return event


@app.command()
@errors
def run(
    ctx: typer.Context,
    job: JobArg,
    as_of: AsOfOpt = None,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    event_file: Annotated[
        Path | None,
        typer.Option("--event", help="A raw Lambda event (JSON file), as the console's Test button sends."),
    ] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run a job now through the Lambda handler (the same code path as on AWS)."""
    name = job_arg(job).name
    if event_file is not None:
        if as_of or dry_run or force:
            raise ValidationError("--event sends the file as it is; put as_of/dry_run/force in the file")
        event = read_event(event_file)
    else:
        event = local.manual_event(as_of=time_opt(as_of), dry_run=dry_run, force=force)
    result = local.invoke_handler(name, event, database_url=database_url(ctx), verbose=verbose)
    output.show(result, as_json, output.print_result)
    exit_if_failed(result.get("status") == "failed")


@app.command()
@errors
def simulate(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--start", help="Start of the simulated window (ISO-8601, UTC).")],
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Length of the window in days.")] = 1,
    job: JobsOpt = None,
    retries: Annotated[
        int,
        typer.Option("--retries", min=0, max=5, help="Immediate retries of a failed occurrence (Lambda retries)."),
    ] = 1,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Fast-forward a simulated clock: fire every job at each scheduled time in [start, start + days)."""
    from jobctl.simulation import simulate_with_progress, window

    begin, end = window(start, days)
    started = time.monotonic()
    outcomes = simulate_with_progress(
        database_url(ctx), begin, end, retries=retries, verbose=verbose, jobs=select_jobs(job)
    )
    seconds = time.monotonic() - started
    failed = sum(o.status == "failed" for o in outcomes)
    tally = schedules.tally(outcomes)
    if as_json:
        runs = {"seconds": round(seconds, 2), "runs": len(outcomes), "failed": failed}
        output.print_json({"start": begin, "end": end, **runs, "jobs": output.tally_json(tally)})
    else:
        span = f"{iso(begin)} .. {iso(end)}"
        output.print_tally(tally, f"{len(outcomes):,} scheduled runs in {seconds:.1f} s ({span})")
    exit_if_failed(failed > 0)


@app.command()
@errors
def scheduler(
    ctx: typer.Context,
    job: JobsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per run.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Fire jobs on their schedules in real time until stopped (Ctrl-C finishes the run in progress)."""
    jobs = select_jobs(job)
    url = database_url(ctx)

    def invoke(job_name: str, event: dict[str, Any]) -> dict[str, Any]:
        return local.invoke_handler(job_name, event, database_url=url, verbose=verbose)

    def on_idle(at: datetime, due: list[str]) -> None:
        output.note(f"next: {iso(at)} {', '.join(due)}")

    def on_outcome(outcome: schedules.Outcome) -> None:
        output.print_outcome(outcome, as_json)

    def cron_of(job_: registry.Job) -> str:  # a `jobctl reschedule` recorded in the database
        with connect(ctx) as conn:
            return schedule_state.state(conn, job_).cron

    sched = schedules.Scheduler(
        invoke, jobs=jobs, on_outcome=on_outcome, on_idle=on_idle if verbose else None, cron_of=cron_of
    )
    output.note(f"scheduler started for {len(jobs)} job(s); Ctrl-C stops it after the run in progress")
    with schedules.stop_on_signals(sched, on_stop=lambda: output.note("stopping after the run in progress ...")):
        outcomes = sched.run()
    output.note(f"scheduler stopped after {len(outcomes)} run(s)")


@app.command()
@errors
def logs(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed runs.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many runs.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The run log (cron_job_logs), newest first."""
    from jobctl.runlog import fetch_logs

    name = job_arg(job).name if job else None
    with connect(ctx) as conn:
        records = fetch_logs(conn, job=name, failed=failed, limit=limit)
    if as_json:
        output.print_json(records)
    else:
        what = ("failed runs" if failed else "runs") + (f" of {name}" if name else "")
        output.print_logs(records, f"Last {len(records)} {what}")


@app.command()
@errors
def stats(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The guide's statistics per job (v_cron_job_stats)."""
    from jobctl.runlog import fetch_stats

    with connect(ctx) as conn:
        records = fetch_stats(conn)
    output.show(records, as_json, output.print_stats)
