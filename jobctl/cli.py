"""``jobctl``: run and operate the scheduled jobs, locally and on AWS.

Local commands work on ``--database-url`` / ``DATABASE_URL``, or on the embedded Postgres
when neither is set. AWS commands use the usual AWS environment and the stack's names
(``--prefix`` / ``JOBCTL_PREFIX``). Every command that prints data takes ``--json``.
Errors are one line on stderr and a non-zero exit: 2 for a usage error (unknown job,
bad cron, bad time, bad event), 1 for a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from jobctl import local, output
from shared import registry
from shared.cron import CronError, next_fire_times, to_eventbridge
from shared.errors import JobsError, ValidationError, redact, translate
from shared.events import MIN_AS_OF_YEAR

app = typer.Typer(
    name="jobctl",
    help="Run and operate the language-exchange app's scheduled jobs, locally and on AWS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The embedded Postgres server (used when DATABASE_URL is unset).", no_args_is_help=True)
app.add_typer(db_app, name="db")

#: Exit codes.
EXIT_FAILED = 1
EXIT_USAGE = 2

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show the handler's log lines on stderr.")]
PrefixOpt = Annotated[
    str,
    typer.Option("--prefix", envvar="JOBCTL_PREFIX", help="The deployment's name prefix (CDK context namePrefix)."),
]


# --------------------------------------------------------------------------- plumbing


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    # one line: Postgres messages carry LINE/HINT lines and a caret
    output.error_line(" ".join(redact(message).split()))
    raise typer.Exit(code)


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Turn every error into one line on stderr and an exit code; never a traceback.

    ``JOBCTL_DEBUG=1`` lets unexpected exceptions through, with their traceback.
    """
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except (registry.UnknownJobError, CronError, ValidationError) as exc:
        fail(str(exc), EXIT_USAGE)
    except JobsError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("JOBCTL_DEBUG"):
            raise
        from botocore.exceptions import BotoCoreError, ClientError

        from jobctl import aws

        if isinstance(exc, BotoCoreError | ClientError):
            fail(str(aws.describe_aws_error(exc, what="the AWS call")))
        fail(str(translate(exc, what="jobctl")))


def _state(ctx: typer.Context) -> dict[str, Any]:
    ctx.ensure_object(dict)
    return ctx.obj  # type: ignore[no-any-return]


def database_url(ctx: typer.Context) -> str:
    """``--database-url``, else ``DATABASE_URL``, else the embedded server's app database."""
    from jobctl import embedded

    state = _state(ctx)
    if not state.get("database_url"):
        state["database_url"] = embedded.database_url()
    return state["database_url"]  # type: ignore[no-any-return]


def connect(ctx: typer.Context) -> Any:
    from shared.db import connect as db_connect

    return db_connect(database_url(ctx))


def job_arg(name: str) -> registry.Job:
    return registry.get(name)


def select_jobs(names: list[str] | None) -> tuple[registry.Job, ...]:
    """The named jobs (all when none), in registry order: the order of jobs due at the same time."""
    if not names:
        return registry.JOBS
    wanted = {job_arg(name).name for name in names}
    return tuple(job for job in registry.JOBS if job.name in wanted)


def time_opt(text: str | None) -> datetime | None:
    return None if text is None else local.parse_time(text)


@app.callback()
def root(
    ctx: typer.Context,
    database_url_opt: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="DATABASE_URL",
            show_envvar=True,
            help="Postgres to use (default: the embedded server's app database).",
        ),
    ] = None,
) -> None:
    """Run and operate the scheduled jobs, locally (embedded Postgres) and on AWS."""
    _state(ctx)["database_url"] = database_url_opt


# --------------------------------------------------------------------------- db


def _pgdata() -> Path:
    from jobctl import embedded

    return Path(os.environ.get("JOBCTL_PGDATA") or embedded.DEFAULT_DATA_DIR).resolve()


@db_app.command("start")
def db_start() -> None:
    """Start the embedded Postgres (data in .pgdata/) and create the app database."""
    with errors():
        from jobctl import embedded

        url = embedded.start(_pgdata()).ensure_database()
        output.note(f"embedded Postgres running (data in {_pgdata()})")
        print(url)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded Postgres."""
    with errors():
        from jobctl import embedded

        if not embedded.is_running(_pgdata()):
            output.note("embedded Postgres is not running")
            return
        embedded.start(_pgdata()).stop()
        output.note("embedded Postgres stopped")


@db_app.command("url")
def db_url(ctx: typer.Context) -> None:
    """Print the database URL jobctl uses (password redacted)."""
    with errors():
        print(redact(database_url(ctx)))


# --------------------------------------------------------------------------- local: set-up


@app.command()
def migrate(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Apply pending migrations (versioned, then changed repeatable SQL functions)."""
    with errors():
        from shared.migrations import migrate as run_migrations

        with connect(ctx) as conn:
            applied = run_migrations(conn)
        if as_json:
            output.print_json({"applied": applied})
        elif applied:
            for name in applied:
                print(f"applied {name}")
        else:
            print("database is up to date")


@app.command()
def seed(
    ctx: typer.Context,
    users: Annotated[int, typer.Option("--users", min=1, help="How many users to create.")] = 10_000,
    as_of: Annotated[str | None, typer.Option("--as-of", help="The app's 'now' (ISO-8601, UTC); default now.")] = None,
    seed_value: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 42,
    as_json: JsonOpt = False,
) -> None:
    """Fill the app with realistic synthetic data (generated in SQL)."""
    with errors():
        moment = time_opt(as_of) or local.utcnow()
        with connect(ctx) as conn:
            counts, seconds = _seed(conn, users=users, as_of=moment, seed_value=seed_value)
        if as_json:
            output.print_json({"as_of": moment, "seconds": round(seconds, 2), "rows": counts})
        else:
            output.print_table(
                f"Seeded in {seconds:.1f} s (as of {local.iso(moment)})",
                ["table", "rows"],
                sorted(counts.items()),
            )


def _seed(conn: Any, *, users: int, as_of: datetime, seed_value: int) -> tuple[dict[str, int], float]:
    from jobctl.seed import seed as seed_app

    started = time.monotonic()
    with output.stderr().status(f"Seeding {users:,} users (as of {local.iso(as_of)}) ..."):
        try:
            counts = seed_app(conn, users=users, as_of=as_of, seed=seed_value)
        except Exception as exc:
            raise translate(exc, what=f"seeding {users:,} users") from None
    return counts, time.monotonic() - started


# --------------------------------------------------------------------------- local: jobs


def describe_schedule(cron: str) -> str:
    from cron_descriptor import Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    return get_description(cron, options)


@app.command("list")
def list_jobs(as_json: JsonOpt = False) -> None:
    """Every job: schedule, EventBridge form, plain English, timeout, dependencies, next run."""
    with errors():
        now = local.utcnow()
        rows = [
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
        if as_json:
            output.print_json(rows)
            return
        output.print_table(
            f"{len(rows)} jobs (times in UTC)",
            ["job", "cron", "EventBridge", "schedule", "timeout", "depends on", "next run"],
            [
                [
                    r["job"],
                    r["cron"],
                    r["eventbridge"],
                    r["schedule"],
                    f"{r['timeout_s']} s",
                    r["depends_on"],
                    r["next_run"],
                ]
                for r in rows
            ],
        )


def _read_event(path: Path) -> dict[str, Any]:
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
def run(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="The job's name (see `jobctl list`).")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="The occurrence to run (ISO-8601, UTC).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Roll back; report what would change.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-run an occurrence that already succeeded.")] = False,
    event_file: Annotated[
        Path | None,
        typer.Option("--event", help="A raw Lambda event (JSON file), as the console's Test button sends."),
    ] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run a job now through the Lambda handler (the same code path as on AWS)."""
    with errors():
        name = job_arg(job).name
        if event_file is not None:
            if as_of or dry_run or force:
                raise ValidationError("--event sends the file as it is; put as_of/dry_run/force in the file")
            event = _read_event(event_file)
        else:
            event = local.manual_event(as_of=time_opt(as_of), dry_run=dry_run, force=force)
        result = local.invoke_handler(name, event, database_url=database_url(ctx), verbose=verbose)
        if as_json:
            output.print_json(result)
        else:
            output.print_result(result)
        if result.get("status") == "failed":
            raise typer.Exit(EXIT_FAILED)


def _window(start: str, days: int) -> tuple[datetime, datetime]:
    """The simulated window, refused (ValidationError) where the handler would refuse its occurrences."""
    begin = local.parse_time(start)
    if days < 1:
        raise ValidationError(f"--days {days}: simulate at least 1 day")
    if begin.year < MIN_AS_OF_YEAR:
        raise ValidationError(
            f"--start {begin.date().isoformat()} is before the year {MIN_AS_OF_YEAR}, and a job refuses an as_of "
            f"before {MIN_AS_OF_YEAR}; pick a later --start"
        )
    if begin > local.utcnow() - timedelta(days=days):  # compared this way round: no overflow near year 9999
        raise ValidationError(
            f"the window of {days} day(s) from {local.iso(begin)} reaches into the future, and a job refuses a "
            "future as_of; pick an earlier --start or fewer --days"
        )
    return begin, begin + timedelta(days=days)


def _simulate(
    url: str,
    begin: datetime,
    end: datetime,
    *,
    retries: int,
    verbose: bool,
    jobs: tuple[registry.Job, ...] = registry.JOBS,
    before: Any = None,
) -> list[local.Outcome]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    plan = local.occurrences(begin, end, jobs)

    def invoke(job_name: str, event: dict[str, Any]) -> dict[str, Any]:
        return local.invoke_handler(job_name, event, database_url=url, verbose=verbose)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=output.stderr(), transient=False) as progress:
        task = progress.add_task(f"simulating {local.iso(begin)} .. {local.iso(end)}", total=len(plan))

        def on_outcome(outcome: local.Outcome) -> None:
            occ = outcome.occurrence
            progress.update(task, advance=1, description=f"{local.iso(occ.at)} {occ.job:<26}")
            if outcome.status == "failed":
                progress.console.print(
                    f"[red]failed[/] {occ.job} at {local.iso(occ.at)} after {outcome.attempts} attempts: "
                    f"{outcome.error}",
                    highlight=False,
                    markup=True,
                )

        return local.simulate(plan, invoke, retries=retries, on_outcome=on_outcome, before=before)


def _print_tally(outcomes: list[local.Outcome], title: str) -> None:
    rows = local.tally(outcomes)
    output.print_table(
        title,
        ["job", "fired", "succeeded", "failed", "skipped", "retried", "avg ms"],
        [[r.job, r.fired, r.succeeded, r.failed, r.skipped, r.retried, r.avg_ms] for r in rows],
    )


def _tally_json(outcomes: list[local.Outcome]) -> list[dict[str, Any]]:
    return [
        {
            "job": r.job,
            "fired": r.fired,
            "succeeded": r.succeeded,
            "failed": r.failed,
            "skipped": r.skipped,
            "retried": r.retried,
            "avg_ms": round(r.avg_ms, 3),
        }
        for r in local.tally(outcomes)
    ]


@app.command()
def simulate(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--start", help="Start of the simulated window (ISO-8601, UTC).")],
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Length of the window in days.")] = 1,
    job: Annotated[list[str] | None, typer.Option("--job", help="Only this job (repeatable).")] = None,
    retries: Annotated[
        int,
        typer.Option("--retries", min=0, max=5, help="Immediate retries of a failed occurrence (Lambda retries)."),
    ] = 1,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Fast-forward a simulated clock: fire every job at each scheduled time in [start, start + days)."""
    with errors():
        begin, end = _window(start, days)
        jobs = select_jobs(job)
        started = time.monotonic()
        outcomes = _simulate(database_url(ctx), begin, end, retries=retries, verbose=verbose, jobs=jobs)
        seconds = time.monotonic() - started
        failed = sum(o.status == "failed" for o in outcomes)
        if as_json:
            output.print_json(
                {
                    "start": begin,
                    "end": end,
                    "seconds": round(seconds, 2),
                    "runs": len(outcomes),
                    "failed": failed,
                    "jobs": _tally_json(outcomes),
                }
            )
        else:
            _print_tally(
                outcomes,
                f"{len(outcomes):,} scheduled runs in {seconds:.1f} s ({local.iso(begin)} .. {local.iso(end)})",
            )
        if failed:
            raise typer.Exit(EXIT_FAILED)


@app.command()
def scheduler(
    ctx: typer.Context,
    job: Annotated[list[str] | None, typer.Option("--job", help="Only this job (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per run.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Fire jobs on their schedules in real time until stopped (Ctrl-C finishes the run in progress)."""
    with errors():
        jobs = select_jobs(job)
        url = database_url(ctx)

        def invoke(job_name: str, event: dict[str, Any]) -> dict[str, Any]:
            return local.invoke_handler(job_name, event, database_url=url, verbose=verbose)

        def on_outcome(outcome: local.Outcome) -> None:
            occ = outcome.occurrence
            if as_json:
                print(
                    json.dumps(
                        output.jsonable(
                            {
                                "job": occ.job,
                                "at": occ.at,
                                "status": outcome.status,
                                "attempts": outcome.attempts,
                                "duration_ms": round(outcome.duration_ms, 3),
                                "error": outcome.error,
                                "summary": (outcome.result or {}).get("summary"),
                            }
                        )
                    ),
                    flush=True,
                )
            else:
                detail = outcome.error or output.fmt(
                    (outcome.result or {}).get("summary") or (outcome.result or {}).get("reason")
                )
                output.stdout().print(
                    f"{local.iso(occ.at)}  {occ.job:<26} {output.styled(outcome.status):<9} "
                    f"{outcome.duration_ms:8.0f} ms  {detail}",
                    highlight=False,
                )

        def on_idle(at: datetime, due: list[str]) -> None:
            output.note(f"next: {local.iso(at)} {', '.join(due)}")

        sched = local.Scheduler(invoke, jobs=jobs, on_outcome=on_outcome, on_idle=on_idle if verbose else None)
        output.note(f"scheduler started for {len(jobs)} job(s); Ctrl-C stops it after the run in progress")
        with local.stop_on_signals(sched, on_stop=lambda: output.note("stopping after the run in progress ...")):
            outcomes = sched.run()
        output.note(f"scheduler stopped after {len(outcomes)} run(s)")


# --------------------------------------------------------------------------- local: monitoring


_LOG_COLUMNS = (
    "id",
    "job_name",
    "status",
    "trigger",
    "as_of",
    "started_at",
    "execution_time_ms",
    "error_message",
    "metadata",
    "forced",
    "dry_run",
    "request_id",
)


def fetch_logs(conn: Any, *, job: str | None, failed: bool, limit: int) -> list[dict[str, Any]]:
    where = ["true"]
    if job:
        where.append("job_name = %(job)s")
    if failed:
        where.append("status = 'failed'")
    query = (
        f"SELECT {', '.join(_LOG_COLUMNS)} FROM cron_job_logs WHERE {' AND '.join(where)} "
        "ORDER BY started_at DESC, id DESC LIMIT %(limit)s"
    )
    return list(conn.execute(query, {"job": job, "limit": limit}).fetchall())


def _log_rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in records:
        meta = r.get("metadata") or {}
        detail = r.get("error_message") or meta.get("summary") or ""
        flags = ", ".join(f for f in ("forced", "dry_run") if r.get(f))
        rows.append(
            [
                r["id"],
                r["job_name"],
                r["status"],
                r["trigger"] + (f" ({flags})" if flags else ""),
                r["as_of"],
                r["started_at"],
                r["execution_time_ms"],
                detail,
            ]
        )
    return rows


def print_logs(records: list[dict[str, Any]], title: str) -> None:
    output.print_table(
        title,
        ["id", "job", "status", "trigger", "as_of", "started", "ms", "summary / error"],
        _log_rows(records),
    )


def fetch_stats(conn: Any) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM v_cron_job_stats").fetchall())


def print_stats(records: list[dict[str, Any]], title: str = "Job statistics (v_cron_job_stats)") -> None:
    output.print_table(
        title,
        ["job", "total runs", "succeeded", "failed", "skipped", "avg ms", "last run"],
        [
            [
                r["job_name"],
                r["total_runs"],
                r["successful_runs"],
                r["failed_runs"],
                r["skipped_runs"],
                r["avg_execution_time_ms"],
                r["last_run_at"],
            ]
            for r in records
        ],
    )


@app.command()
def logs(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed runs.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many runs.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The run log (cron_job_logs), newest first."""
    with errors():
        name = job_arg(job).name if job else None
        with connect(ctx) as conn:
            records = fetch_logs(conn, job=name, failed=failed, limit=limit)
        if as_json:
            output.print_json(records)
        else:
            what = ("failed runs" if failed else "runs") + (f" of {name}" if name else "")
            print_logs(records, f"Last {len(records)} {what}")


@app.command()
def stats(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The guide's statistics per job (v_cron_job_stats)."""
    with errors():
        with connect(ctx) as conn:
            records = fetch_stats(conn)
        if as_json:
            output.print_json(records)
        else:
            print_stats(records)


# --------------------------------------------------------------------------- AWS


@app.command()
def invoke(
    job: Annotated[str, typer.Argument(help="The job's name.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="The occurrence to run (ISO-8601, UTC).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Roll back; report what would change.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-run an occurrence that already succeeded.")] = False,
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Invoke the deployed Lambda function synchronously and print its result."""
    with errors():
        from jobctl import aws
        from shared.events import parse_event

        # Everything is validated before any AWS configuration is read (region, credentials):
        # the payload exactly as the deployed handler will (an as_of in the future or before 2000).
        job_ = job_arg(job)
        payload = local.manual_event(as_of=time_opt(as_of), dry_run=dry_run, force=force)
        parse_event(job_, payload)
        result = aws.invoke(aws.client("lambda"), job_.name, payload, prefix=prefix)
        if as_json:
            output.print_json(result)
        else:
            output.print_result(result)
        if result.get("status") == "failed":
            raise typer.Exit(EXIT_FAILED)


def _print_rule(rule: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        output.print_json(
            {
                "rule": rule.get("Name"),
                "state": rule.get("State"),
                "schedule": rule.get("ScheduleExpression"),
                "arn": rule.get("Arn"),
            }
        )
    else:
        output.stdout().print(
            f"{verb} {rule.get('Name')}: {output.styled(rule.get('State'))}, {rule.get('ScheduleExpression')}",
            highlight=False,
        )


@app.command()
def pause(
    job: Annotated[str, typer.Argument(help="The job's name.")],
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Disable the job's EventBridge rule (no scheduled runs until resumed)."""
    with errors():
        from jobctl import aws

        name = job_arg(job).name  # validated before any AWS configuration is read
        _print_rule(aws.pause(aws.client("events"), name, prefix=prefix), as_json, "paused")


@app.command()
def resume(
    job: Annotated[str, typer.Argument(help="The job's name.")],
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Enable the job's EventBridge rule again."""
    with errors():
        from jobctl import aws

        name = job_arg(job).name  # validated before any AWS configuration is read
        _print_rule(aws.resume(aws.client("events"), name, prefix=prefix), as_json, "resumed")


@app.command()
def reschedule(
    job: Annotated[str, typer.Argument(help="The job's name.")],
    cron: Annotated[str, typer.Argument(help="New schedule, 5-field Unix cron in UTC, e.g. '0 20 * * *'.")],
    prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Change the deployed rule's schedule (a hand change: change the registry to make it permanent)."""
    with errors():
        from jobctl import aws

        name = job_arg(job).name  # the name and the cron are validated before any AWS configuration is read
        to_eventbridge(cron)
        rule = aws.reschedule(aws.client("events"), name, cron, prefix=prefix)
        _print_rule(rule, as_json, "rescheduled")
        if not as_json:
            output.note(
                f"note: the next `cdk deploy` puts back the registry's schedule "
                f"({registry.get(name).cron}); change shared/registry.py to keep {cron!r}"
            )


def _last_runs(url: str | None) -> tuple[dict[str, dict[str, Any]], str | None]:
    if not url:
        return {}, "no DATABASE_URL: showing the rules only"
    from shared.db import connect as db_connect

    rows: list[dict[str, Any]]
    try:
        with db_connect(url) as conn:
            rows = conn.execute("""
                SELECT DISTINCT ON (job_name) job_name, status AS last_status, started_at AS last_run_at,
                       as_of AS last_as_of, trigger AS last_trigger,
                       max(started_at) FILTER (WHERE status = 'succeeded') OVER w AS last_success_at,
                       count(*) FILTER (WHERE status = 'failed' AND started_at > now() - interval '24 hours')
                           OVER w AS failed_24h
                FROM cron_job_logs
                WINDOW w AS (PARTITION BY job_name)
                ORDER BY job_name, started_at DESC, id DESC
            """).fetchall()  # type: ignore[assignment]  # dict rows (shared.db.connect)
    except Exception as exc:
        return {}, f"database not reachable ({translate(exc, what='reading cron_job_logs')}): rules only"
    return {r["job_name"]: r for r in rows}, None


@app.command()
def status(ctx: typer.Context, prefix: PrefixOpt = "", as_json: JsonOpt = False) -> None:
    """Each deployed rule's state and schedule, next to its last runs (when a database is reachable).

    The last runs come from ``--database-url`` / ``DATABASE_URL`` (the deployed database);
    without one, only the rules are shown (the embedded server is not started for this).
    """
    with errors():
        from jobctl import aws

        rules = aws.rules_status(aws.client("events"), prefix=prefix)
        runs, why = _last_runs(_state(ctx).get("database_url"))
        records = []
        for rule in rules:
            last = runs.get(rule["job"], {})
            records.append(
                {
                    **rule,
                    **{
                        k: last.get(k)
                        for k in (
                            "last_status",
                            "last_run_at",
                            "last_as_of",
                            "last_trigger",
                            "last_success_at",
                            "failed_24h",
                        )
                    },
                }
            )
        if as_json:
            output.print_json({"rules": records, "note": why})
            return
        output.print_table(
            "Deployed schedules" + (f" (prefix {prefix!r})" if prefix else ""),
            ["job", "state", "schedule", "last run", "status", "last success", "failed 24h"],
            [
                [
                    r["job"],
                    r["state"],
                    (r["schedule"] or "-") + (" (differs from registry)" if r["drift"] else ""),
                    r["last_run_at"],
                    r["last_status"],
                    r["last_success_at"],
                    r["failed_24h"],
                ]
                for r in records
            ],
        )
        if why:
            output.note(why)


# --------------------------------------------------------------------------- demo


DEMO_USERS = 10_000
DEMO_DAYS = 8


@app.command()
def demo(
    users: Annotated[int, typer.Option("--users", min=100, help="Users to seed.")] = DEMO_USERS,
    days: Annotated[int, typer.Option("--days", min=1, max=28, help="Days of schedules to simulate.")] = DEMO_DAYS,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The whole system on the embedded Postgres: rebuild its app database, migrate, seed, simulate."""
    with errors():
        import psycopg

        from jobctl import embedded
        from shared.db import connect as db_connect
        from shared.migrations import migrate as run_migrations

        started = time.monotonic()
        if os.environ.get("DATABASE_URL"):
            output.note(
                "note: the demo always uses the embedded Postgres (it rebuilds its database); "
                "DATABASE_URL is ignored here"
            )
        begin = local.demo_start(local.utcnow())
        end = begin + timedelta(days=days)

        # 1. the embedded server and a fresh app database: the demo starts from the same
        #    state every time (same seed, same window), so running it again gives the same result.
        with output.stderr().status("Starting the embedded Postgres ..."):
            server = embedded.start(_pgdata())
            with psycopg.connect(server.url(), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{embedded.APP_DATABASE}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{embedded.APP_DATABASE}"')
            url = server.url(embedded.APP_DATABASE)
        output.note(
            f"[1/4] embedded Postgres ready, database {embedded.APP_DATABASE!r} rebuilt "
            f"({time.monotonic() - started:.1f} s)"
        )

        with db_connect(url) as conn:
            applied = run_migrations(conn)
            output.note(f"[2/4] {len(applied)} migrations applied ({time.monotonic() - started:.1f} s)")
            counts, seed_s = _seed(conn, users=users, as_of=begin, seed_value=42)
            output.note(
                f"[3/4] seeded {users:,} users as of {local.iso(begin)} in {seed_s:.1f} s "
                f"({sum(counts.values()):,} rows)"
            )

        output.note(
            f"[4/4] simulating {days} days of schedules: {local.iso(begin)} .. {local.iso(end)} "
            "(users stay active meanwhile)"
        )
        sim_started = time.monotonic()
        with db_connect(url) as app_conn:
            # The seed is the app as of `begin`; without new activity every streak would
            # just break on the second day. At each simulated midnight, the day that ended
            # gets its activity (once a day, not hourly: every change of XP makes the
            # hourly leaderboard refresh rewrite its ranks, which the demo cannot afford).
            def app_activity(at: datetime) -> None:
                if at > begin and (at.hour, at.minute) == (0, 0):
                    local.demo_activity(app_conn, at - timedelta(days=1))

            outcomes = _simulate(url, begin, end, retries=1, verbose=verbose, before=app_activity)
        sim_s = time.monotonic() - sim_started

        with db_connect(url) as conn:
            stats_rows = fetch_stats(conn)
            last_runs = fetch_logs(conn, job=None, failed=False, limit=15)
        total_s = time.monotonic() - started
        failed = sum(o.status == "failed" for o in outcomes)
        if as_json:
            output.print_json(
                {
                    "database_url": redact(url),
                    "start": begin,
                    "end": end,
                    "seed_rows": counts,
                    "runs": len(outcomes),
                    "failed": failed,
                    "simulate_seconds": round(sim_s, 2),
                    "total_seconds": round(total_s, 2),
                    "jobs": _tally_json(outcomes),
                    "stats": stats_rows,
                    "last_runs": last_runs,
                }
            )
        else:
            _print_tally(outcomes, f"Simulated {len(outcomes):,} scheduled runs in {sim_s:.1f} s")
            print_stats(stats_rows)
            print_logs(last_runs, "Last runs")
            output.stdout().print(
                f"Demo finished in {total_s:.1f} s. Explore it: jobctl logs, jobctl stats, "
                f"jobctl run update-user-streaks --dry-run, jobctl list.",
                highlight=False,
            )
        if failed:
            raise typer.Exit(EXIT_FAILED)


# --------------------------------------------------------------------------- bench


@app.command()
def bench(
    ctx: typer.Context,
    users: Annotated[int, typer.Option("--users", min=1_000, help="Users in the benchmark data set.")] = 1_000_000,
    runs: Annotated[int, typer.Option("--runs", min=1, max=50, help="Timed runs per job (median).")] = 5,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Seed the data set again instead of reusing it.")] = False,
    job: Annotated[
        list[str] | None,
        typer.Option("--job", help="Time only this job (repeatable); skips the runner and Lambda measures."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Time every job at scale through the runner, with the runner's overhead and the Lambda's cold start."""
    with errors():
        from jobctl import bench as benchmark
        from jobctl import embedded

        url = _state(ctx).get("database_url") or embedded.start(_pgdata()).url()
        report = benchmark.run_bench(url, users=users, runs=runs, rebuild=rebuild, only=job, on_step=output.note)
        if as_json:
            print(benchmark.to_json(report))
        else:
            benchmark.print_report(report)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
