"""The Lambda side (the handler's cold import, the asset's size) and the machine the benchmark ran on."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from jobctl.bench.targets import IMPORT_RUNS, TARGET_ASSET_MB, TARGET_COLD_IMPORT_MS
from jobctl.embedded import ROOT
from shared import registry

_IMPORT = "import time; t = time.perf_counter(); import functions.handler; print((time.perf_counter() - t) * 1000)"
#: Lambda's view of the asset: only the asset and what the runtime provides, nothing site-wide.
_IMPORT_FROM = "import sys; sys.path[:0] = sys.argv[1:3]; " + _IMPORT


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
    """``import functions.handler`` the way Lambda loads it, in ``runs`` fresh interpreters each way:
    CPython 3.13 (-I -S -B: nothing site-wide, nothing written) from the asset built for this machine
    (plus the runtime's boto3), as shipped (bytecode) and with its bytecode removed (what a read-only
    code directory without it costs: every module compiled at every cold start)."""
    import shutil
    import tempfile

    from cdk import bundling

    python, boto3_dir = bundling.find_python313(), bundling.runtime_provided()
    asset = bundling.build_asset(install_dependencies=True, architecture=bundling.local_architecture())
    env = lambda_environment()
    medians: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "asset"
        shutil.copytree(asset, bare, ignore=shutil.ignore_patterns("__pycache__"))
        for kind, path in (("shipped", asset), ("no_bytecode", bare)):
            argv = [str(python), "-I", "-S", "-B", "-c", _IMPORT_FROM, str(path), str(boto3_dir)]
            samples[kind] = [_ms(argv, path, env) for _ in range(runs)]
            medians[kind] = statistics.median(samples[kind])
    median = medians["shipped"]
    return {
        "runs": runs,
        "median_ms": round(median, 1),
        "samples_ms": [round(s, 1) for s in samples["shipped"]],
        "without_bytecode_median_ms": round(medians["no_bytecode"], 1),
        "python": str(python),
        "target_ms": TARGET_COLD_IMPORT_MS,
        "met": median <= TARGET_COLD_IMPORT_MS,
    }


def _ms(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    out = subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout  # noqa: S603
    return float(out.strip().splitlines()[-1])


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
