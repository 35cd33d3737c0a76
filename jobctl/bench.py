"""``jobctl bench``: every job at 1,000,000 users, timed through the normal runner.

1. **Dataset**: a template database ``bench_<users>_<seed>_<schema>`` on the embedded
   server (or the ``DATABASE_URL`` server) holds the seeded app (``jobctl.seed``) as it is
   just before the jobs of a Sunday 00:00 run, vacuumed and analysed as a live database
   is by autovacuum. It is built once (~3 min at 1 M users) and reused while the users,
   the seed and the app schema (``V001``) and the seed SQL are unchanged; later migrations
   (indexes, job functions) are applied to it on reuse. ``--rebuild`` builds it again.
2. **State to run on**: every bench run clones the template (``CREATE DATABASE ... TEMPLATE``)
   into ``bench_run``, so each run starts from the same state (the clone is kept for
   inspection and replaced by the next run).
3. **Jobs**, in registry order (the order of jobs due together), each at its own fire time
   on that Sunday (or 00:00 for the monthly ones): ``--runs`` dry runs through
   :func:`shared.runner.run` (the real work in a transaction that is rolled back, so each
   starts from the same state; their median is the job's time), then one real run (its
   summary is the rows changed, and it leaves the state the next job expects).
   cleanup-expired-stories dry-runs one batch; its real run deletes the whole backlog and
   every batch transaction is timed (the longest is the longest lock hold).
   database-maintenance's dry run skips VACUUM, so its runs are all real (VACUUM repeats).
   ``--job NAME`` times only the named jobs (on the data set as it is; the jobs before them
   do not run) and skips the measures below.
4. **Runner overhead**: a run of cleanup-expired-sessions (no work left) through the runner
   minus the same SQL called directly, medians over ``OVERHEAD_RUNS`` runs.
5. **Lambda**: ``import functions.handler`` in fresh interpreters (median of
   ``IMPORT_RUNS``), and the unzipped size of the asset ``cdk/bundling.py`` builds.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from shared import registry
from shared.cron import next_fire_times

ROOT = Path(__file__).resolve().parent.parent
RUN_DATABASE = "bench_run"

#: The guide's table of expected times, in seconds (low, high); every other job: "< 1 s".
GUIDE_ESTIMATE_S: dict[str, tuple[float, float]] = {
    "update-user-streaks": (1, 5),
    "calculate-daily-metrics": (2, 10),
    "update-leaderboards": (5, 30),
    "send-weekly-reports": (10, 60),
}
GUIDE_OTHERS_S = (0.0, 1.0)
#: Issue 8's targets at 1,000,000 users on a 2-core machine, in seconds; every other job: 1 s.
TARGET_S: dict[str, float] = {
    "update-user-streaks": 1.0,
    "calculate-daily-metrics": 2.0,
    "update-leaderboards": 5.0,
    "send-weekly-reports": 10.0,
}
TARGET_OTHERS_S = 1.0
#: cleanup-expired-stories may take longer in total; no batch may hold its locks longer than this.
TARGET_BATCH_LOCK_S = 1.0
TARGET_RUNNER_OVERHEAD_MS = 5.0
TARGET_COLD_IMPORT_MS = 300.0
TARGET_ASSET_MB = 30.0

DEFAULT_USERS = 1_000_000
DEFAULT_RUNS = 5
OVERHEAD_RUNS = 200
IMPORT_RUNS = 7
OVERHEAD_JOB = "cleanup-expired-sessions"


def guide_text(name: str) -> str:
    low, high = GUIDE_ESTIMATE_S.get(name, GUIDE_OTHERS_S)
    return f"{low:g}-{high:g} s" if low else f"< {high:g} s"


def target_s(name: str) -> float:
    return TARGET_S.get(name, TARGET_OTHERS_S)


# --------------------------------------------------------------------------- dataset


def base_as_of(now: datetime) -> datetime:
    """The latest Sunday 00:00 UTC whose whole day has passed (every job's fire time is in the past)."""
    day = (now.astimezone(UTC) - timedelta(days=1)).date()
    sunday = day - timedelta(days=(day.weekday() + 1) % 7)
    return datetime(sunday.year, sunday.month, sunday.day, tzinfo=UTC)


def job_as_of(job: registry.Job, base: datetime) -> datetime:
    """The job's first fire time on ``base``'s day (00:00 for jobs that do not fire that day)."""
    first = next_fire_times(job.cron, base - timedelta(microseconds=1))[0]
    return first if first < base + timedelta(days=1) else base


def schema_key() -> str:
    """What the seeded rows depend on: the seed SQL and the app schema it writes into."""
    from shared.migrations import MIGRATIONS_DIR

    digest = hashlib.sha256()
    for path in (ROOT / "jobctl" / "sql" / "seed.sql", MIGRATIONS_DIR / "V001__app_schema.sql"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def dataset_name(users: int, seed: int) -> str:
    return f"bench_{users}_{seed}_{schema_key()}"


def with_database(url: str, name: str) -> str:
    return make_conninfo(url, dbname=name)


@dataclass
class Dataset:
    name: str
    users: int
    seed: int
    as_of: datetime
    built: bool
    build_s: float
    migrations_applied: list[str] = field(default_factory=list)


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _comment(admin: psycopg.Connection, name: str) -> dict[str, Any] | None:
    row = admin.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    if row is None or not row[0]:
        return None
    try:
        meta = json.loads(row[0])
    except ValueError:
        return None
    return meta if isinstance(meta, dict) and meta.get("complete") else None


def _drop(admin: psycopg.Connection, name: str) -> None:
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists:
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _open_template(admin: psycopg.Connection, name: str, allow: bool) -> None:
    admin.execute(
        sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allow else "false")
        )
    )


def ensure_dataset(
    admin_url: str,
    *,
    users: int,
    seed: int,
    rebuild: bool = False,
    now: datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Dataset:
    """Build (or reuse) the template database of ``users`` users and return what it holds."""
    from jobctl.seed import seed as seed_app
    from shared.db import connect
    from shared.migrations import migrate

    say = on_step or (lambda _: None)
    name = dataset_name(users, seed)
    with _admin(admin_url) as admin:
        meta = None if rebuild else _comment(admin, name)
        if meta is not None:
            _open_template(admin, name, True)
            try:
                with connect(with_database(admin_url, name)) as conn:
                    applied = migrate(conn)
                    if applied:
                        say(f"applied {len(applied)} migration(s) to {name}; analysing")
                        conn.execute("ANALYZE")
                    _populate_leaderboards(conn, datetime.fromisoformat(meta["as_of"]), say)
            finally:
                _open_template(admin, name, False)
            return Dataset(name, users, seed, datetime.fromisoformat(meta["as_of"]), False, 0.0, applied)

        started = time.monotonic()
        as_of = base_as_of(now or datetime.now(UTC))
        _drop(admin, name)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with connect(with_database(admin_url, name)) as conn:
            applied = migrate(conn)
            say(f"seeding {users:,} users as of {as_of.isoformat()} into {name} (~3 min per million)")
            seed_app(
                conn,  # type: ignore[arg-type]  # seed reads rows either way (dict or tuple)
                users=users,
                as_of=as_of,
                seed=seed,
                on_step=lambda step, rows, s: say(f"seed {step}: {rows:,} rows in {s:.1f} s"),
            )
            _populate_leaderboards(conn, as_of, say)
            say("VACUUM (ANALYZE): the visibility map and statistics a live database keeps")
            conn.execute("VACUUM (ANALYZE)")
        build_s = time.monotonic() - started
        meta = {
            "complete": True,
            "users": users,
            "seed": seed,
            "as_of": as_of.isoformat(),
            "build_s": round(build_s, 1),
            "schema": schema_key(),
        }
        admin.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(json.dumps(meta)))
        )
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        return Dataset(name, users, seed, as_of, True, build_s, applied)


def _populate_leaderboards(conn: psycopg.Connection[Any], as_of: datetime, say: Callable[[str], None]) -> None:
    """The boards as the previous hourly run left them (the seed leaves them never populated,
    and update-leaderboards then populates them plainly instead of refreshing them concurrently)."""
    unpopulated = conn.execute(
        "SELECT count(*) AS n FROM pg_class WHERE relkind = 'm' AND NOT relispopulated"
    ).fetchone()
    if unpopulated and unpopulated["n"]:
        say("populating the leaderboards as of the previous hour")
        with conn.transaction():
            conn.execute("SELECT job_update_leaderboards(%s)", (as_of - timedelta(hours=1),))


def clone(admin_url: str, template: str, target: str = RUN_DATABASE) -> float:
    """Replace ``target`` with a copy of ``template``; return the seconds it took."""
    started = time.monotonic()
    with _admin(admin_url) as admin:
        _drop(admin, target)
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(target), sql.Identifier(template)
            )
        )
    return time.monotonic() - started


# --------------------------------------------------------------------------- measuring the jobs


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

    started = time.perf_counter()
    try:
        return _bench_job(job, base, conn, runs)
    except (JobsError, RuntimeError) as exc:
        elapsed = time.perf_counter() - started
        return JobTiming(
            job=job.name,
            as_of=job_as_of(job, base).isoformat().replace("+00:00", "Z"),
            summary={},
            median_s=elapsed,
            runs_s=[],
            real_s=elapsed,
            guide=guide_text(job.name),
            target_s=target_s(job.name),
            met=False,
            how="failed",
            error=" ".join(str(exc).split())[:300],
        )


def _bench_job(job: registry.Job, base: datetime, conn: psycopg.Connection[Any], runs: int) -> JobTiming:
    """``runs`` dry runs (median) and one real run of ``job`` at its fire time on ``base``'s day."""
    from shared.registry import Mode

    as_of = job_as_of(job, base)
    longest: float | None = None
    batches: int | None = None
    if job.mode is Mode.MAINTENANCE:
        # the dry run skips VACUUM: time real runs (VACUUM and the log pruning repeat)
        real_s, result = run_once(job, as_of, conn, dry_run=False)
        times = [real_s]
        for i in range(1, runs):
            times.append(run_once(job, as_of + timedelta(seconds=i), conn, dry_run=False)[0])
        summary = dict(result.summary)
        median = real_s  # the first run is the one with the other jobs' dead rows to vacuum
        repeats = statistics.median(times[1:] or times)
        how = f"first real run (VACUUM after the other jobs' writes); repeats: median {repeats:.3f} s"
        met = median <= target_s(job.name)
    elif job.mode is Mode.BATCHED:
        times = [run_once(job, as_of, conn, dry_run=True)[0] for _ in range(runs)]
        durations: list[float] = []
        with timed_transactions(durations):
            real_s, result = run_once(job, as_of, conn, dry_run=False)
        summary = dict(result.summary)
        batches = len(durations)
        longest = max(durations) if durations else 0.0
        median = real_s
        how = (
            f"real run: {batches} batch transactions, longest {longest * 1000:.0f} ms; "
            f"one batch dry-run median {statistics.median(times) * 1000:.0f} ms"
        )
        met = longest <= TARGET_BATCH_LOCK_S
    else:
        times = [run_once(job, as_of, conn, dry_run=True)[0] for _ in range(runs)]
        real_s, result = run_once(job, as_of, conn, dry_run=False)
        summary = dict(result.summary)
        median = statistics.median(times)
        how = f"median of {runs} dry runs (rolled back); real run {real_s:.3f} s"
        met = max(median, real_s) <= target_s(job.name)
    return JobTiming(
        job=job.name,
        as_of=as_of.isoformat().replace("+00:00", "Z"),
        summary=summary,
        median_s=median,
        runs_s=[round(t, 4) for t in times],
        real_s=real_s,
        guide=guide_text(job.name),
        target_s=target_s(job.name),
        met=met,
        how=how,
        batches=batches,
        longest_batch_s=longest,
    )


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


# --------------------------------------------------------------------------- the Lambda side


_IMPORT = "import time; t = time.perf_counter(); import functions.handler; print((time.perf_counter() - t) * 1000)"


def lambda_environment() -> dict[str, str]:
    """What a function sees in Lambda: its name (so Powertools knows it is in Lambda) and the
    Powertools settings the CDK app gives it (cdk/lambda_function.py; not imported here, as
    importing aws_cdk starts a Node.js process)."""
    from shared import naming

    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    env.update(
        {
            "POWERTOOLS_SERVICE_NAME": naming.SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": naming.METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "AWS_LAMBDA_FUNCTION_NAME": "bench-cold-import",
            "AWS_REGION": "us-east-1",
            "JOB_NAME": registry.JOBS[0].name,
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def cold_import(runs: int = IMPORT_RUNS) -> dict[str, Any]:
    """``import functions.handler`` in ``runs`` fresh interpreters (bytecode cached, as after the first)."""
    env = lambda_environment()
    samples = []
    for _ in range(runs + 1):  # the first one may write the bytecode cache: not counted
        argv = [sys.executable, "-c", _IMPORT]
        out = subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout  # noqa: S603
        samples.append(float(out.strip().splitlines()[-1]))
    median = statistics.median(samples[1:])
    return {
        "runs": runs,
        "median_ms": round(median, 1),
        "samples_ms": [round(s, 1) for s in samples[1:]],
        "target_ms": TARGET_COLD_IMPORT_MS,
        "met": median <= TARGET_COLD_IMPORT_MS,
    }


def _tree_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def asset_size() -> dict[str, Any]:
    """The unzipped size of the Lambda asset, built the way ``make synth`` builds it (cdk/bundling.py)."""
    from cdk.bundling import build_asset

    try:
        path = build_asset(install_dependencies=True)
        source = "cdk/bundling.py build_asset()"
    except Exception as exc:  # pip for the Lambda platform needs the package index
        candidates = (
            sorted((ROOT / "cdk.out").glob("asset.*"), key=lambda p: _tree_size(p)[0])
            if (ROOT / "cdk.out").is_dir()
            else []
        )
        if not candidates:
            return {"error": f"could not build the asset: {exc}", "met": False}
        path = candidates[-1]
        source = "the largest asset under cdk.out (make synth)"
    size, count = _tree_size(path)
    mb = size / 1_000_000
    return {
        "path": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "source": source,
        "files": count,
        "unzipped_mb": round(mb, 2),
        "target_mb": TARGET_ASSET_MB,
        "met": mb <= TARGET_ASSET_MB,
    }


# --------------------------------------------------------------------------- the machine


def machine(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem_gb = round(kb / 1024 / 1024, 1)
    settings = {
        r["name"]: r["setting"]
        for r in conn.execute(
            "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name IN "
            "('shared_buffers', 'work_mem', 'maintenance_work_mem', 'max_parallel_workers_per_gather', "
            "'effective_cache_size', 'synchronous_commit', 'jit')"
        ).fetchall()
    }
    version = conn.execute("SELECT current_setting('server_version') AS v").fetchone()
    return {
        "nproc": os.cpu_count(),
        "memory_gb": mem_gb,
        "cpu": cpu,
        "postgres": version["v"] if version else None,
        "postgres_settings": settings,
    }


# --------------------------------------------------------------------------- the whole benchmark


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
    results: list[JobTiming] = []
    with connect(url) as conn:
        info = machine(conn)
        for job in selected:
            say(f"{job.name}: {runs} runs ...")
            timing = bench_job(job, dataset.as_of, conn, runs)
            say(f"{job.name}: {timing.median_s:.3f} s, {timing.summary}")
            results.append(timing)
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


def print_report(report: Report) -> None:
    from jobctl import output

    m = report.machine
    output.print_table(
        f"{report.users:,} users · {m['nproc']} cores, {m['memory_gb']} GB, {m['cpu']} · Postgres {m['postgres']}",
        ["job", "rows changed (summary)", "time", "guide", "target", "met", "how measured"],
        [
            [
                t.job,
                ", ".join(f"{k} {v:,}" for k, v in t.summary.items()),
                (
                    f"{t.median_s:.3f} s"
                    + (f" (longest batch {t.longest_batch_s:.3f} s)" if t.longest_batch_s is not None else "")
                ),
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
                f"median of {c['runs']} fresh interpreters: {c['samples_ms']}",
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
