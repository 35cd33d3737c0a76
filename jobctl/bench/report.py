"""The whole benchmark (:func:`run_bench`) and its report: tables for people, JSON for scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from jobctl.bench.dataset import RUN_DATABASE, clone, ensure_dataset
from jobctl.bench.environment import asset_size, cold_import, machine
from jobctl.bench.targets import (
    DEFAULT_RUNS,
    DEFAULT_USERS,
    IMPORT_RUNS,
    OVERHEAD_JOB,
    OVERHEAD_RUNS,
    TARGET_ASSET_MB,
    TARGET_BATCH_LOCK_S,
)
from jobctl.bench.timing import JobTiming, bench_job, floor_after_all, runner_overhead
from jobctl.databases import with_database
from shared import registry


@dataclass
class Report:
    users: int
    runs: int
    dataset: dict[str, Any]
    machine: dict[str, Any]
    jobs: list[JobTiming]
    runner_overhead: dict[str, Any]
    cold_import: dict[str, Any]
    asset: dict[str, Any]
    clone_s: float
    total_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_bench(
    admin_url: str,
    *,
    users: int = DEFAULT_USERS,
    runs: int = DEFAULT_RUNS,
    seed: int = 42,
    rebuild: bool = False,
    only: list[str] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Report:
    """The whole benchmark; ``only`` (job names) times just those jobs, in registry order, on the
    data set as it is before the run (the jobs before them do not run), and skips the runner,
    cold-import and asset measures."""
    from shared.db import connect

    selected = [registry.get(name) for name in only] if only else list(registry.JOBS)
    selected.sort(key=registry.JOBS.index)

    say = on_step or (lambda _: None)
    started = time.monotonic()
    dataset = ensure_dataset(admin_url, users=users, seed=seed, rebuild=rebuild, on_step=say)
    say(
        f"dataset {dataset.name} ({'built' if dataset.built else 'reused'}, as of {dataset.as_of.isoformat()}); "
        f"cloning it into {RUN_DATABASE}"
    )
    clone_s = clone(admin_url, dataset.name)
    url = with_database(admin_url, RUN_DATABASE)
    with connect(url) as conn:
        info = machine(conn)
        results = _time_jobs(selected, dataset.as_of, conn, runs, say)
        overhead: dict[str, Any] = {}
        if not only:
            say(f"runner overhead: {OVERHEAD_RUNS} runs of {OVERHEAD_JOB} through the runner and directly ...")
            overhead = runner_overhead(conn, dataset.as_of)
    imports: dict[str, Any] = {}
    asset: dict[str, Any] = {}
    if not only:
        say(f"handler cold import: {IMPORT_RUNS} fresh interpreters ...")
        imports = cold_import()
        say("Lambda asset: building it the way make synth does ...")
        asset = asset_size()
    return Report(
        users=users,
        runs=runs,
        dataset={**asdict(dataset), "as_of": dataset.as_of.isoformat()},
        machine=info,
        jobs=results,
        runner_overhead=overhead,
        cold_import=imports,
        asset=asset,
        clone_s=round(clone_s, 1),
        total_s=round(time.monotonic() - started, 1),
    )


def _time_jobs(
    selected: list[registry.Job], base: datetime, conn: Any, runs: int, say: Callable[[str], None]
) -> list[JobTiming]:
    """Each job in order, then the floors measured after every job has run (``floor_after_all``)."""
    results: list[JobTiming] = []
    for job in selected:
        say(f"{job.name}: {runs} runs ...")
        timing = bench_job(job, base, conn, runs)
        longest = "" if timing.longest_batch_s is None else f", longest batch {timing.longest_batch_s:.3f} s"
        say(f"{job.name}: {timing.median_s:.3f} s{longest}, {timing.summary}")
        results.append(timing)
    for job, timing in zip(selected, results, strict=True):
        floor_after_all(timing, job, base, conn, runs)
        if timing.floor_s is not None:
            say(f"{job.name}: floor {timing.floor_s:.3f} s ({timing.ratio}x)")
    return results


def print_report(report: Report) -> None:
    from jobctl import output

    m = report.machine
    output.print_table(
        f"{report.users:,} users · {m['nproc']} cores, {m['memory_gb']} GB, {m['cpu']} · Postgres {m['postgres']}",
        ["job", "rows changed (summary)", "time", "floor (ratio)", "guide", "target", "met", "how measured"],
        [
            [
                t.job,
                ", ".join(f"{k} {v:,}" for k, v in t.summary.items()),
                (
                    f"{t.median_s:.3f} s"
                    + (f" (longest batch {t.longest_batch_s:.3f} s)" if t.longest_batch_s is not None else "")
                ),
                "-" if t.floor_s is None else f"{t.floor_s:.3f} s ({t.ratio:.2f}x)",
                t.guide,
                (f"≤ {t.target_s:g} s" if t.longest_batch_s is None else f"batch ≤ {TARGET_BATCH_LOCK_S:g} s"),
                "yes" if t.met else "NO",
                t.error or t.how,
            ]
            for t in report.jobs
        ],
    )
    o, c, a = report.runner_overhead, report.cold_import, report.asset
    if o and c and a:
        _print_lambda_table(o, c, a)
    d = report.dataset
    built = f"built in {d['build_s']:.0f} s" if d["built"] else "reused"
    output.note(f"dataset {d['name']} ({built}), clone {report.clone_s:.0f} s, total {report.total_s:.0f} s")


def _print_lambda_table(o: dict[str, Any], c: dict[str, Any], a: dict[str, Any]) -> None:
    from jobctl import output

    output.print_table(
        "The runner and the Lambda",
        ["measure", "value", "target", "met", "detail"],
        [
            [
                "runner overhead per run",
                f"{o['overhead_ms']:.2f} ms",
                f"≤ {o['target_ms']:g} ms",
                "yes" if o["met"] else "NO",
                f"{o['job']}: {o['run_ms']:.2f} ms through the runner vs {o['sql_ms']:.2f} ms SQL alone, "
                f"medians of {o['runs']}",
            ],
            [
                "handler cold import",
                f"{c['median_ms']:.0f} ms",
                f"≤ {c['target_ms']:g} ms",
                "yes" if c["met"] else "NO",
                f"from the asset, CPython 3.13, median of {c['runs']}: {c['samples_ms']}; "
                f"without its bytecode {c['without_bytecode_median_ms']:.0f} ms",
            ],
            [
                "Lambda asset, unzipped",
                f"{a.get('unzipped_mb', '?')} MB",
                f"≤ {TARGET_ASSET_MB:g} MB",
                "yes" if a.get("met") else "NO",
                a.get("error") or f"{a['files']} files in {a['path']}",
            ],
        ],
    )


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), default=str, indent=2)
