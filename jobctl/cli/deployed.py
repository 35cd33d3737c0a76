"""Commands on the deployed stack (AWS): ``invoke``, ``status``; ``pause`` and friends are in healing.py."""

from __future__ import annotations

import typer

from jobctl import local, output
from jobctl.cli.common import (
    AsOfOpt,
    DryRunOpt,
    ForceOpt,
    JobArg,
    JsonOpt,
    PrefixOpt,
    errors,
    exit_if_failed,
    job_arg,
    state,
    time_opt,
)

app = typer.Typer()

# Every command validates its arguments before any AWS configuration is read (region,
# credentials), so a typo gets exit 2 and the same message with or without AWS access.


@app.command()
@errors
def invoke(
    job: JobArg,
    as_of: AsOfOpt = None,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Invoke the deployed Lambda function synchronously and print its result."""
    from jobctl import aws
    from shared.events import parse_event

    job_ = job_arg(job)
    payload = local.manual_event(as_of=time_opt(as_of), dry_run=dry_run, force=force)
    parse_event(job_, payload)  # the payload checked exactly as the deployed handler will
    result = aws.invoke(aws.client("lambda"), job_.name, payload, prefix=prefix)
    output.show(result, as_json, output.print_result)
    exit_if_failed(result.get("status") == "failed")


_LAST_RUN_KEYS = ("last_status", "last_run_at", "last_as_of", "last_trigger", "last_success_at", "failed_24h")


@app.command()
@errors
def status(ctx: typer.Context, prefix: PrefixOpt = "", as_json: JsonOpt = False) -> None:
    """Each deployed rule's state and schedule, next to its last runs (when a database is reachable).

    The last runs come from ``--database-url`` / ``DATABASE_URL`` (the deployed database);
    without one, only the rules are shown (the embedded server is not started for this).
    """
    from jobctl import aws
    from jobctl.cli.adoption import PG_CRON_TWICE, pg_cron_also_schedules
    from jobctl.runlog import last_runs

    rules = aws.rules_status(aws.client("events"), prefix=prefix)
    runs, why = last_runs(state(ctx).get("database_url"))
    twice = pg_cron_also_schedules(state(ctx).get("database_url"), rules)
    records = [{**rule, **{k: runs.get(rule["job"], {}).get(k) for k in _LAST_RUN_KEYS}} for rule in rules]
    if as_json:
        output.print_json({"rules": records, "note": why, "also_scheduled_by_pg_cron": twice})
        return
    output.print_status(records, prefix)
    if why:
        output.note(why)
    if twice:
        output.note(PG_CRON_TWICE.format(jobs=", ".join(twice)))
