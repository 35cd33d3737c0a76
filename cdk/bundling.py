"""The Lambda code asset, built without Docker: ``functions/`` and ``shared/`` plus the runtime
dependencies the Lambda runtime lacks, as binary wheels for the Lambda platform, compiled to
bytecode by CPython 3.13 (docs/deploy.md, "Packaging"). Built in ``.build/lambda/<content
hash>/`` before ``Code.from_asset`` and reused while its inputs are unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
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
#: The reference app schema is applied by ``jobctl migrate --app-schema`` only, never on AWS.
EXCLUDED_DIRS = (Path("shared/sql/app"),)
#: Provided by the Lambda Python runtime (boto3 and everything it depends on). Our own copy would
#: shadow the runtime's and could pair the runtime's botocore with a urllib3 it was not built
#: for. None is pinned: nothing in the functions needs a version the runtime lacks (they call
#: Secrets Manager through Powertools, which works with any boto3 of the last years).
PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer", "urllib3", "jmespath", "python-dateutil", "six"}
PYTHON_VERSION = "3.13"
#: Lambda's python3.13 runtime runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels
#: work there as well as manylinux2014 ones.
PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}
#: Shipped bytecode is never checked against its source: the code directory cannot change.
INVALIDATION_MODE = "unchecked-hash"
#: Where Lambda unpacks the code: the file names compiled into the bytecode (tracebacks).
LAMBDA_TASK_ROOT = "/var/task"
_COMPLETE = ".complete"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def find_python313() -> Path:
    """A local CPython 3.13, to compile the bytecode Lambda's python3.13 loads.

    ``LAMBDA_PYTHON`` if set, else pyenv's newest 3.13 (``pyenv root``/versions/3.13*), else
    ``python3.13`` on PATH. Raises RuntimeError saying how to get one.
    """
    candidates: list[Path] = []
    if os.environ.get("LAMBDA_PYTHON"):
        candidates.append(Path(os.environ["LAMBDA_PYTHON"]))
    roots = [Path(os.environ["PYENV_ROOT"])] if os.environ.get("PYENV_ROOT") else []
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)  # noqa: S607
        roots.append(Path(out.stdout.strip()))
    roots.append(Path.home() / ".pyenv")
    for root in roots:
        versions = sorted((root / "versions").glob(f"{PYTHON_VERSION}*"), key=_version_key, reverse=True)
        candidates += [v / "bin" / f"python{PYTHON_VERSION}" for v in versions]
    on_path = shutil.which(f"python{PYTHON_VERSION}")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if _is_python313(candidate):
            return candidate
    raise RuntimeError(
        f"bundling needs CPython {PYTHON_VERSION} (Lambda's runtime) to compile the asset's bytecode, "
        f"and found none: install it (`pyenv install {PYTHON_VERSION}`) or set LAMBDA_PYTHON to its path"
    )


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in re.split(r"[.]", path.name))


def _is_python313(path: Path) -> bool:
    if not path.is_file():
        return False
    probe = subprocess.run(  # noqa: S603 - a local interpreter, fixed argv
        [str(path), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
    )
    return probe.returncode == 0 and probe.stdout.strip() == PYTHON_VERSION


def compile_command(python: Path, directory: Path) -> list[str]:
    """compileall for Lambda: every module, unchecked-hash, file names as under /var/task."""
    return [
        str(python),
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        INVALIDATION_MODE,
        "-s",
        str(directory),
        "-p",
        LAMBDA_TASK_ROOT,
        str(directory),
    ]


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """``[project].dependencies`` without what the Lambda runtime provides."""
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    names = [_canonical(re.split(r"[\[<>=!~;\s]", spec, maxsplit=1)[0]) for spec in deps]
    return [spec for spec, name in zip(deps, names, strict=True) if name not in PROVIDED_BY_RUNTIME]


def pip_command(target: Path, requirements: list[str], architecture: str = "arm64") -> list[str]:
    """pip for the Lambda platform: CPython 3.13 binary wheels (the bytecode is compiled afterwards)."""
    platforms = [arg for platform in PLATFORMS[architecture] for arg in ("--platform", platform)]
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
    """Drop what the runtime provides (pulled in transitively, e.g. botocore and its urllib3 by
    aws-xray-sdk), every file its installed RECORD lists; then console scripts and caches."""
    for dist in importlib.metadata.distributions(path=[str(target)]):
        if _canonical(dist.metadata["Name"]) not in PROVIDED_BY_RUNTIME:
            continue
        for file in dist.files or ():
            path = (target / file).resolve()
            if path.is_relative_to(target.resolve()) and path.is_file():
                path.unlink()
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(target / "bin", ignore_errors=True)
    for directory in sorted((d for d in target.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()


def source_files(root: Path = ROOT) -> Iterator[Path]:
    """The runtime source files, relative to ``root``, in a stable order."""
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            rel = path.relative_to(root)
            if (
                path.is_file()
                and path.suffix in SOURCE_SUFFIXES
                and not any(part in {"__pycache__", "tests"} or part.startswith(("test_", ".")) for part in rel.parts)
                and not any(rel.is_relative_to(excluded) for excluded in EXCLUDED_DIRS)
            ):
                yield rel


def _fingerprint(root: Path, requirements: list[str], install: bool, architecture: str) -> str:
    compiled = json.dumps([PYTHON_VERSION, INVALIDATION_MODE, LAMBDA_TASK_ROOT])
    digest = hashlib.sha256(
        (_dependencies_key(requirements, architecture) + compiled).encode() if install else b"sources-only"
    )
    for rel in source_files(root):
        digest.update(rel.as_posix().encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def _dependencies_key(requirements: list[str], architecture: str) -> str:
    pip = pip_command(Path("T"), [], architecture)[3:]
    spec = {"requirements": requirements, "pip": pip, "prune": sorted(PROVIDED_BY_RUNTIME)}
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:20]


def _replace_with_only(directory: Path, keep: str) -> None:
    """Empty ``directory`` of every build but ``keep`` (so .build does not grow)."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        if old.name.split(".")[0] != keep:
            shutil.rmtree(old) if old.is_dir() else old.unlink()


def _dependencies(requirements: list[str], build_dir: Path, architecture: str) -> Path:
    """The pip-installed dependencies, built once per requirements set (source edits reuse them)."""
    deps_dir = build_dir / f"dependencies-{architecture}"
    key = _dependencies_key(requirements, architecture)
    out, marker = deps_dir / key, deps_dir / f"{key}{_COMPLETE}"
    if marker.exists() and out.is_dir():
        return out
    _replace_with_only(deps_dir, "")
    staging = deps_dir / f"{key}.tmp"
    staging.mkdir()
    subprocess.run(pip_command(staging, requirements, architecture), check=True)  # noqa: S603 - fixed argv
    _prune(staging)
    staging.rename(out)
    marker.touch()
    return out


def build_asset(
    *, install_dependencies: bool = True, architecture: str = "arm64", root: Path = ROOT, build_dir: Path = BUILD_DIR
) -> Path:
    """Build (or reuse) the asset directory and return it.

    ``install_dependencies=False`` (tests, ``-c skipBundling=true``) copies the sources only:
    no pip run, no bytecode.
    """
    requirements = runtime_requirements(root / "pyproject.toml")
    kind_dir = build_dir / (f"full-{architecture}" if install_dependencies else "sources-only")
    out = kind_dir / _fingerprint(root, requirements, install_dependencies, architecture)
    marker = kind_dir / f"{out.name}{_COMPLETE}"  # beside the asset: it must not change its hash
    if marker.exists() and out.is_dir():
        return out
    _replace_with_only(kind_dir, "")
    staging = kind_dir / f"{out.name}.tmp"
    if install_dependencies:
        python = find_python313()  # before pip: fail at once, not after the downloads
        shutil.copytree(_dependencies(requirements, build_dir, architecture), staging)
    else:
        staging.mkdir()
    for rel in source_files(root):
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, staging / rel)
    if install_dependencies:
        subprocess.run(compile_command(python, staging), check=True)  # noqa: S603 - fixed argv
    staging.rename(out)
    marker.touch()
    return out


def local_architecture() -> str:
    """This machine's Lambda architecture name: an asset built for it runs here."""
    import platform

    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]


def runtime_provided(root: Path = ROOT, build_dir: Path = BUILD_DIR) -> Path:
    """What the Lambda runtime adds to the asset's path: pyproject's boto3 pin and its dependencies,
    installed for CPython 3.13 in a directory of their own (built once), to run an asset locally."""
    deps = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    (pin,) = [spec for spec in deps if _canonical(re.split(r"[\[<>=!~;\s]", spec, maxsplit=1)[0]) == "boto3"]
    target = build_dir / "runtime-provided" / re.sub(r"[^A-Za-z0-9.]+", "-", pin)
    marker = target.with_name(f"{target.name}{_COMPLETE}")
    if not (marker.exists() and target.is_dir()):
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        wheels = ["--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION]
        subprocess.run([*pip, *wheels, "--upgrade", "--target", str(target), pin], check=True)  # noqa: S603
        marker.touch()
    return target
