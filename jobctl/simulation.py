"""A simulated window of schedules for ``jobctl simulate`` and the demo: validated, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from jobctl import local, output, schedules
from shared import registry
from shared.errors import ValidationError
from shared.events import MIN_AS_OF_YEAR, iso


def window(start: str, days: int) -> tuple[datetime, datetime]:
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
            f"the window of {days} day(s) from {iso(begin)} reaches into the future, and a job refuses a "
            "future as_of; pick an earlier --start or fewer --days"
        )
    return begin, begin + timedelta(days=days)


def simulate_with_progress(
    url: str,
    begin: datetime,
    end: datetime,
    *,
    retries: int,
    verbose: bool,
    jobs: tuple[registry.Job, ...] = registry.JOBS,
    before: Callable[[datetime], None] | None = None,
) -> list[schedules.Outcome]:
    """:func:`jobctl.schedules.simulate` over [begin, end) through the handler, with a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    plan = schedules.occurrences(begin, end, jobs)

    def invoke(job_name: str, event: dict[str, Any]) -> dict[str, Any]:
        return local.invoke_handler(job_name, event, database_url=url, verbose=verbose)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=output.stderr(), transient=False) as progress:
        task = progress.add_task(f"simulating {iso(begin)} .. {iso(end)}", total=len(plan))

        def on_outcome(outcome: schedules.Outcome) -> None:
            occ = outcome.occurrence
            progress.update(task, advance=1, description=f"{iso(occ.at)} {occ.job:<26}")
            if outcome.status == "failed":
                progress.console.print(
                    f"[red]failed[/] {occ.job} at {iso(occ.at)} after {outcome.attempts} attempts: {outcome.error}",
                    highlight=False,
                    markup=True,
                )

        return schedules.simulate(plan, invoke, retries=retries, on_outcome=on_outcome, before=before)
