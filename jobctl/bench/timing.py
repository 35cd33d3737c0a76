"""Timing each job through the runner, and the runner's own overhead."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from jobctl.bench import floor
from jobctl.bench.dataset import job_as_of
from jobctl.bench.targets import (
    OVERHEAD_JOB,
    OVERHEAD_RUNS,
    TARGET_BATCH_LOCK_S,
    TARGET_RUNNER_OVERHEAD_MS,
    guide_text,
    target_s,
)
from shared import registry


@dataclass
class JobTiming:
    job: str
    as_of: str
    summary: dict[str, int]
    median_s: float
    runs_s: list[float]
    real_s: float
    guide: str
    target_s: float
    met: bool
    how: str
    batches: int | None = None
    longest_batch_s: float | None = None
    error: str | None = None
    floor_s: float | None = None
    """The plainest statement writing the same rows, rolled back (:mod:`jobctl.bench.floor`)."""
    floor_rows: int | None = None
    ratio: float | None = None
    """The job's time over its floor."""


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the runner's log lines and EMF metrics (JSON on stdout) while it runs."""
    from shared.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    sink = open(os.devnull, "w")  # noqa: SIM115 - closed below
    old = handler.setStream(sink)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        handler.setStream(old)  # type: ignore[arg-type]
        sink.close()


def _clear_metrics() -> None:
    """What the handler's flush does after each invocation, without printing."""
    from shared.observability import metrics

    metrics.clear_metrics()


def run_once(job: registry.Job, as_of: datetime, conn: psycopg.Connection[Any], *, dry_run: bool) -> tuple[float, Any]:
    """One run through the runner; returns (seconds, RunResult)."""
    from shared import runner
    from shared.events import RunRequest, Trigger

    request = RunRequest(job=job, as_of=as_of, trigger=Trigger.MANUAL, explicit_as_of=True, dry_run=dry_run)
    started = time.perf_counter()
    with quiet():
        result = runner.run(request, get_connection=lambda: conn)
    seconds = time.perf_counter() - started
    _clear_metrics()
    if result.status.value != "succeeded":
        raise RuntimeError(f"{job.name} at {as_of.isoformat()}: {result.status.value}: {result.reason}")
    return seconds, result


@contextlib.contextmanager
def timed_transactions(durations: list[float]) -> Iterator[None]:
    """Time every transaction the job executor opens (for the batched job: one per batch)."""
    from shared import execution

    original = execution.transaction

    @contextlib.contextmanager
    def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            with original(*args, **kwargs) as conn:
                yield conn
        finally:
            durations.append(time.perf_counter() - started)

    execution.transaction = timed  # type: ignore[assignment]
    try:
        yield
    finally:
        execution.transaction = original  # type: ignore[assignment]


def bench_job(job: registry.Job, base: datetime, conn: psycopg.Connection[Any], runs: int) -> JobTiming:
    """Time ``job``; a run that fails (e.g. over its budget) is reported as such and the benchmark goes on."""
    from shared.errors import JobsError
    from shared.registry import Mode

    as_of = job_as_of(job, base)
    measure = {Mode.MAINTENANCE: _maintenance, Mode.BATCHED: _batched}.get(job.mode, _transactional)
    spec = floor.FLOORS.get(job.name)
    measured_floor: floor.FloorTiming | None = None
    started = time.perf_counter()
    try:
        if spec and spec.before_real_run:
            measured_floor = floor.time_write(conn, spec, floor.collect(conn, spec, as_of), runs)
        m = measure(job, as_of, conn, runs)
    except (JobsError, RuntimeError, psycopg.Error) as exc:
        elapsed = time.perf_counter() - started
        m = _Measured([], elapsed, {}, elapsed, "failed", False, error=_one_line(exc))
        measured_floor = None
    timing = JobTiming(
        job=job.name,
        as_of=as_of.isoformat().replace("+00:00", "Z"),
        summary=m.summary,
        median_s=m.median_s,
        runs_s=[round(t, 4) for t in m.times],
        real_s=m.real_s,
        guide=guide_text(job.name),
        target_s=target_s(job.name),
        met=m.met,
        how=m.how,
        batches=m.batches,
        longest_batch_s=m.longest_batch_s,
        error=m.error,
    )
    if spec and measured_floor:
        _set_floor(timing, spec, measured_floor)
    return timing


def floor_after_all(
    timing: JobTiming, job: registry.Job, base: datetime, conn: psycopg.Connection[Any], runs: int
) -> None:
    """The floor of a job whose rows are collected after its real run, measured once every job has
    run: its rolled-back writes leave dead rows, which database-maintenance's first run would
    otherwise vacuum as if the jobs had left them. A floor that fails is reported as the job's
    error, and the benchmark goes on."""
    spec = floor.FLOORS.get(job.name)
    if spec is None or spec.before_real_run or timing.error:
        return
    try:
        measured = floor.time_write(conn, spec, floor.collect(conn, spec, job_as_of(job, base)), runs)
    except (RuntimeError, psycopg.Error) as exc:
        timing.error = f"floor: {_one_line(exc)}"
        return
    _set_floor(timing, spec, measured)


def _set_floor(timing: JobTiming, spec: floor.Floor, measured: floor.FloorTiming) -> None:
    """The floor's figures and the job's ratio to it (none for a job that failed, or no rows)."""
    timing.floor_rows = measured.rows
    timing.floor_s = round(measured.floor_s, 4) if measured.rows else None
    timing.ratio = None if timing.error else floor.ratio(timing.median_s, timing.summary, spec, measured)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


@dataclass
class _Measured:
    times: list[float]
    real_s: float
    summary: dict[str, int]
    median_s: float
    how: str
    met: bool
    batches: int | None = None
    longest_batch_s: float | None = None
    error: str | None = None


def _maintenance(job: registry.Job, as_of: datetime, conn: psycopg.Connection[Any], runs: int) -> _Measured:
    """Real runs (the dry run skips VACUUM); the first, with the other jobs' dead rows to vacuum, is the time."""
    real_s, result = run_once(job, as_of, conn, dry_run=False)
    times = [real_s] + [run_once(job, as_of + timedelta(seconds=i), conn, dry_run=False)[0] for i in range(1, runs)]
    repeats = statistics.median(times[1:] or times)
    how = f"first real run (VACUUM after the other jobs' writes); repeats: median {repeats:.3f} s"
    return _Measured(times, real_s, dict(result.summary), real_s, how, real_s <= target_s(job.name))


def _batched(job: registry.Job, as_of: datetime, conn: psycopg.Connection[Any], runs: int) -> _Measured:
    """Dry runs do one batch; the real run deletes the whole backlog, each batch transaction timed."""
    times = [run_once(job, as_of, conn, dry_run=True)[0] for _ in range(runs)]
    durations: list[float] = []
    with timed_transactions(durations):
        real_s, result = run_once(job, as_of, conn, dry_run=False)
    longest = max(durations) if durations else 0.0
    how = (
        f"real run: {len(durations)} batch transactions, longest {longest * 1000:.0f} ms; "
        f"one batch dry-run median {statistics.median(times) * 1000:.0f} ms"
    )
    met = longest <= TARGET_BATCH_LOCK_S
    return _Measured(times, real_s, dict(result.summary), real_s, how, met, len(durations), longest)


def _transactional(job: registry.Job, as_of: datetime, conn: psycopg.Connection[Any], runs: int) -> _Measured:
    """``runs`` dry runs (rolled back: each starts from the same state; their median), then one real run."""
    times = [run_once(job, as_of, conn, dry_run=True)[0] for _ in range(runs)]
    real_s, result = run_once(job, as_of, conn, dry_run=False)
    median = statistics.median(times)
    how = f"median of {runs} dry runs (rolled back); real run {real_s:.3f} s"
    return _Measured(times, real_s, dict(result.summary), median, how, max(median, real_s) <= target_s(job.name))


def runner_overhead(conn: psycopg.Connection[Any], base: datetime, runs: int = OVERHEAD_RUNS) -> dict[str, Any]:
    """A run of a job with nothing to do through the runner vs. its SQL called directly (medians, ms)."""
    from shared import execution
    from shared.db import transaction

    job = registry.get(OVERHEAD_JOB)
    through: list[float] = []
    direct: list[float] = []
    for i in range(runs):
        as_of = base + timedelta(days=1, seconds=i)  # a new occurrence each time: the full claim protocol
        through.append(run_once(job, as_of, conn, dry_run=False)[0])
        started = time.perf_counter()
        with transaction(conn, timeout_ms=job.timeout_s * 1000):
            execution.call_work(conn, job, as_of)
        direct.append(time.perf_counter() - started)
    run_ms = statistics.median(through) * 1000
    sql_ms = statistics.median(direct) * 1000
    overhead = run_ms - sql_ms
    return {
        "job": job.name,
        "runs": runs,
        "run_ms": round(run_ms, 3),
        "sql_ms": round(sql_ms, 3),
        "overhead_ms": round(overhead, 3),
        "target_ms": TARGET_RUNNER_OVERHEAD_MS,
        "met": overhead <= TARGET_RUNNER_OVERHEAD_MS,
    }
