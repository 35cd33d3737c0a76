"""The Lambda code asset, built without Docker.

One asset for every function: ``functions/`` and ``shared/`` (only ``.py`` and ``.sql``; no
tests, no caches) plus the runtime dependencies from pyproject's ``[project].dependencies``
minus boto3 (the Lambda runtime ships it), installed by pip for the Lambda platform
(arm64, CPython 3.13) from binary wheels only. The directory is built before
``Code.from_asset``, in ``.build/lambda/<content hash>/``, and reused while its inputs are
unchanged, so a second ``cdk synth`` costs no pip run.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".build" / "lambda"
SOURCE_PACKAGES = ("functions", "shared")
SOURCE_SUFFIXES = {".py", ".sql"}
#: Provided by the Lambda Python runtime; bundling our own copy only adds megabytes.
PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer"}
PYTHON_VERSION = "3.13"
#: Lambda's python3.13 runtime runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels
#: work there as well as manylinux2014 ones.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
_COMPLETE = ".complete"


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """``[project].dependencies`` without what the Lambda runtime provides."""
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    keep = []
    for spec in deps:
        name = re.split(r"[\[<>=!~;\s]", spec, maxsplit=1)[0].lower().replace("_", "-")
        if name not in PROVIDED_BY_RUNTIME:
            keep.append(spec)
    return keep


def pip_command(target: Path, requirements: list[str]) -> list[str]:
    """pip for the Lambda platform: arm64 CPython 3.13 binary wheels, no .pyc (the code is read-only there)."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        *platforms,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--target",
        str(target),
        *requirements,
    ]


def _prune(target: Path) -> None:
    """Drop what the runtime provides (pulled in transitively, e.g. botocore by aws-xray-sdk: a second,
    different botocore beside the runtime's boto3 would shadow the runtime's), console scripts and caches."""
    for entry in list(target.iterdir()):
        name = entry.name.split("-")[0].lower().replace("_", "-")
        if name in PROVIDED_BY_RUNTIME or entry.name == "bin":
            shutil.rmtree(entry)
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def source_files(root: Path = ROOT) -> Iterator[Path]:
    """The runtime source files, relative to ``root``, in a stable order."""
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            rel = path.relative_to(root)
            if (
                path.is_file()
                and path.suffix in SOURCE_SUFFIXES
                and not any(part in {"__pycache__", "tests"} or part.startswith(("test_", ".")) for part in rel.parts)
            ):
                yield rel


def _fingerprint(root: Path, requirements: list[str], install: bool) -> str:
    digest = hashlib.sha256(_dependencies_key(requirements).encode() if install else b"sources-only")
    for rel in source_files(root):
        digest.update(rel.as_posix().encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def _dependencies_key(requirements: list[str]) -> str:
    spec = {"requirements": requirements, "pip": pip_command(Path("T"), [])[3:], "prune": sorted(PROVIDED_BY_RUNTIME)}
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:20]


def _replace_with_only(directory: Path, keep: str) -> None:
    """Empty ``directory`` of every build but ``keep`` (so .build does not grow)."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        if old.name.split(".")[0] != keep:
            shutil.rmtree(old) if old.is_dir() else old.unlink()


def _dependencies(requirements: list[str], build_dir: Path) -> Path:
    """The pip-installed dependencies, built once per requirements set (source edits reuse them)."""
    deps_dir = build_dir / "dependencies"
    key = _dependencies_key(requirements)
    out, marker = deps_dir / key, deps_dir / f"{key}{_COMPLETE}"
    if marker.exists() and out.is_dir():
        return out
    _replace_with_only(deps_dir, "")
    staging = deps_dir / f"{key}.tmp"
    staging.mkdir()
    subprocess.run(pip_command(staging, requirements), check=True)  # noqa: S603 - fixed argv
    _prune(staging)
    staging.rename(out)
    marker.touch()
    return out


def build_asset(*, install_dependencies: bool = True, root: Path = ROOT, build_dir: Path = BUILD_DIR) -> Path:
    """Build (or reuse) the asset directory and return it.

    ``install_dependencies=False`` (tests, ``-c skipBundling=true``) copies the sources only.
    """
    requirements = runtime_requirements(root / "pyproject.toml")
    kind_dir = build_dir / ("full" if install_dependencies else "sources-only")
    out = kind_dir / _fingerprint(root, requirements, install_dependencies)
    marker = kind_dir / f"{out.name}{_COMPLETE}"  # beside the asset: it must not change its hash
    if marker.exists() and out.is_dir():
        return out
    _replace_with_only(kind_dir, "")
    staging = kind_dir / f"{out.name}.tmp"
    if install_dependencies:
        shutil.copytree(_dependencies(requirements, build_dir), staging)
    else:
        staging.mkdir()
    for rel in source_files(root):
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, staging / rel)
    staging.rename(out)
    marker.touch()
    return out
