"""The Docker-free asset: what goes in, how pip is called, and reuse of an unchanged build."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from cdk import bundling

ROOT = Path(__file__).resolve().parents[2]


def test_what_the_lambda_runtime_provides_is_left_out():
    assert {"boto3", "botocore", "s3transfer", "urllib3", "jmespath", "python-dateutil", "six"} == (
        bundling.PROVIDED_BY_RUNTIME
    )


def test_runtime_requirements_are_pyprojects_minus_boto3():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert bundling.runtime_requirements() == [d for d in declared if not d.startswith("boto3")]
    assert any(d.startswith("psycopg[binary]") for d in bundling.runtime_requirements())


def test_pip_installs_binary_wheels_for_lambda_arm64_python_313(tmp_path):
    cmd = bundling.pip_command(tmp_path, ["psycopg[binary]==3.3.9"])
    assert cmd[1:4] == ["-m", "pip", "install"]
    joined = " ".join(cmd)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--only-binary=:all:" in cmd
    assert "--implementation cp" in joined
    assert "--python-version 3.13" in joined
    assert f"--target {tmp_path}" in joined
    assert cmd[-1] == "psycopg[binary]==3.3.9"


def test_x86_64_bundling_fetches_x86_64_wheels(tmp_path):
    joined = " ".join(bundling.pip_command(tmp_path, ["psycopg[binary]==3.3.9"], "x86_64"))
    assert "--platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64" in joined
    assert "aarch64" not in joined


def test_bytecode_is_compiled_by_python_313_with_unchecked_hashes(tmp_path):
    # Given a module, compiled the way the asset is
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    python = bundling.find_python313()
    subprocess.run(bundling.compile_command(python, tmp_path), check=True)
    # Then the bytecode is CPython 3.13's, hash-based and never checked against the source (PEP 552)
    (pyc,) = (tmp_path / "pkg" / "__pycache__").glob("mod.*.pyc")
    assert pyc.name == "mod.cpython-313.pyc"
    magic = subprocess.run(
        [str(python), "-c", "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = pyc.read_bytes()[:8]
    assert header[:4].hex() == magic
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, unchecked
    # And tracebacks name the file where Lambda puts it
    code = subprocess.run(
        [str(python), "-c", f"import marshal; print(marshal.loads(open('{pyc}', 'rb').read()[16:]).co_filename)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert code == "/var/task/pkg/mod.py"


def test_a_missing_python_313_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMBDA_PYTHON", str(tmp_path / "none"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"needs CPython 3\.13 .* install it .*or set LAMBDA_PYTHON"):
        bundling.find_python313()


def test_only_runtime_sources_go_in():
    files = [p.as_posix() for p in bundling.source_files()]
    assert "functions/handler.py" in files
    assert "functions/watchdog.py" in files
    assert "shared/sql/jobs/migrations/V009__jobs_layer_baseline.sql" in files
    # the reference app schema is applied by `jobctl migrate --app-schema` only, never on AWS
    assert not any(f.startswith("shared/sql/app/") for f in files)
    assert all(f.startswith(("functions/", "shared/")) for f in files)
    assert all(f.endswith((".py", ".sql")) for f in files)
    assert not any("__pycache__" in f or "/tests/" in f for f in files)


def make_project(root: Path) -> None:
    (root / "functions").mkdir(parents=True)
    (root / "shared" / "sql" / "migrations").mkdir(parents=True)
    (root / "shared" / "__pycache__").mkdir()
    (root / "shared" / "tests").mkdir()
    (root / "pyproject.toml").write_text('[project]\ndependencies = ["boto3==1", "croniter==7.0.0"]\n')
    (root / "functions" / "handler.py").write_text("def handler(e, c): ...\n")
    (root / "shared" / "db.py").write_text("X = 1\n")
    (root / "shared" / "sql" / "migrations" / "V001__a.sql").write_text("SELECT 1;\n")
    (root / "shared" / "notes.md").write_text("not runtime\n")
    (root / "shared" / "__pycache__" / "db.cpython-311.pyc").write_bytes(b"\0")
    (root / "shared" / "tests" / "test_db.py").write_text("def test(): ...\n")


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_sources_only_build_copies_exactly_the_runtime_files_and_is_reused(tmp_path):
    # Given a project tree with caches, tests and docs beside the code
    make_project(tmp_path / "p")
    # When the asset is built without the pip step
    out = bundling.build_asset(install_dependencies=False, root=tmp_path / "p", build_dir=tmp_path / "build")
    # Then it holds the .py and .sql files only
    assert tree(out) == {"functions/handler.py", "shared/db.py", "shared/sql/migrations/V001__a.sql"}
    # And an unchanged project reuses the same directory; a changed source builds a new one
    assert bundling.build_asset(install_dependencies=False, root=tmp_path / "p", build_dir=tmp_path / "build") == out
    (tmp_path / "p" / "shared" / "db.py").write_text("X = 2\n")
    changed = bundling.build_asset(install_dependencies=False, root=tmp_path / "p", build_dir=tmp_path / "build")
    assert changed != out
    assert not out.exists()  # the stale build was removed


def install_fake(target: Path, name: str, version: str, files: list[str]) -> None:
    """A distribution as pip leaves it: its files and a dist-info with METADATA and RECORD."""
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    for rel in [*files, f"{info}/METADATA", f"{info}/RECORD"]:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text("")
    (target / info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (target / info / "RECORD").write_text(
        "".join(f"{rel},,\n" for rel in [*files, f"{info}/METADATA", f"{info}/RECORD"])
    )


def test_prune_drops_every_file_of_what_the_runtime_provides(tmp_path):
    install_fake(tmp_path, "botocore", "1.44.8", ["botocore/__init__.py", "botocore/data/x.json"])
    install_fake(tmp_path, "six", "1.17.0", ["six.py"])
    install_fake(tmp_path, "python-dateutil", "2.9.0", ["dateutil/__init__.py", "dateutil/tz/tz.py"])
    install_fake(tmp_path, "urllib3", "2.5.0", ["urllib3/__init__.py"])
    install_fake(tmp_path, "jmespath", "1.0.1", ["jmespath/__init__.py"])
    install_fake(tmp_path, "psycopg", "3.3.9", ["psycopg/__init__.py"])
    (tmp_path / "bin").mkdir()
    (tmp_path / "psycopg" / "__pycache__").mkdir()
    bundling._prune(tmp_path)
    assert tree(tmp_path) == {
        "psycopg/__init__.py",
        "psycopg-3.3.9.dist-info/METADATA",
        "psycopg-3.3.9.dist-info/RECORD",
    }
    assert {p.name for p in tmp_path.iterdir()} == {"psycopg", "psycopg-3.3.9.dist-info"}


def test_full_build_installs_dependencies_once_and_reuses_them_across_source_edits(tmp_path, monkeypatch):
    # Given pip replaced by a stand-in that records its calls and "installs" a package and botocore
    calls, compiled = [], []

    def fake_pip(cmd, check):
        if "compileall" in cmd:
            compiled.append(cmd)
            return
        calls.append(cmd)
        target = Path(cmd[cmd.index("--target") + 1])
        install_fake(target, "croniter", "7.0.0", ["croniter/__init__.py"])
        install_fake(target, "botocore", "1.44.8", ["botocore/__init__.py"])
        (target / "croniter" / "__pycache__").mkdir()

    monkeypatch.setattr(bundling.subprocess, "run", fake_pip)
    monkeypatch.setattr(bundling, "find_python313", lambda: Path("/opt/python3.13"))
    make_project(tmp_path / "p")
    build = {"install_dependencies": True, "root": tmp_path / "p", "build_dir": tmp_path / "build"}
    # When the asset is built, a source changes, and it is built again
    first = bundling.build_asset(**build)
    (tmp_path / "p" / "shared" / "db.py").write_text("X = 3\n")
    second = bundling.build_asset(**build)
    # Then pip ran once, with boto3 left out, and each asset holds the dependencies (pruned) and the sources
    assert len(calls) == 1
    assert calls[0][-1] == "croniter==7.0.0" and not any("boto3" in arg for arg in calls[0])
    assert first != second
    assert tree(second) == {
        "croniter/__init__.py",
        "croniter-7.0.0.dist-info/METADATA",
        "croniter-7.0.0.dist-info/RECORD",
        "functions/handler.py",
        "shared/db.py",
        "shared/sql/migrations/V001__a.sql",
    }
    assert (second / "shared" / "db.py").read_text() == "X = 3\n"
    # And each asset was compiled, by Python 3.13, before it took its final name
    assert len(compiled) == 2 and compiled[1][0] == "/opt/python3.13"
    assert compiled[1][-1].endswith(".tmp") and "unchecked-hash" in compiled[1]
