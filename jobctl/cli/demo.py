"""Commands: ``demo`` (the whole system on the embedded Postgres) and ``bench`` (every job at scale)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from jobctl import output, schedules
from jobctl.cli.common import JsonOpt, VerboseOpt, errors, exit_if_failed, pgdata, state
from jobctl.demo import DEMO_DAYS, DEMO_USERS

app = typer.Typer()


@app.command()
@errors
def demo(
    users: Annotated[int, typer.Option("--users", min=100, help="Users to seed.")] = DEMO_USERS,
    days: Annotated[int, typer.Option("--days", min=1, max=28, help="Days of schedules to simulate.")] = DEMO_DAYS,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The whole system on the embedded Postgres: rebuild its app database, migrate, seed, simulate."""
    from jobctl.demo import run_demo

    if os.environ.get("DATABASE_URL"):
        output.note(
            "note: the demo always uses the embedded Postgres (it rebuilds its database); DATABASE_URL is ignored here"
        )
    report = run_demo(pgdata(), users=users, days=days, verbose=verbose)
    if as_json:
        output.print_json(report.to_json())
    else:
        runs = len(report.outcomes)
        output.print_tally(
            schedules.tally(report.outcomes), f"Simulated {runs:,} scheduled runs in {report.simulate_seconds:.1f} s"
        )
        output.print_stats(report.stats)
        output.print_logs(report.last_runs, "Last runs")
        output.stdout().print(
            f"Demo finished in {report.total_seconds:.1f} s. Explore it: jobctl logs, jobctl stats, "
            f"jobctl run update-user-streaks --dry-run, jobctl list.",
            highlight=False,
        )
    exit_if_failed(report.failed > 0)


@app.command()
@errors
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
    from jobctl import bench as benchmark
    from jobctl import embedded

    url = state(ctx).get("database_url") or embedded.start(pgdata()).url()
    report = benchmark.run_bench(url, users=users, runs=runs, rebuild=rebuild, only=job, on_step=output.note)
    if as_json:
        print(benchmark.to_json(report))
    else:
        benchmark.print_report(report)
