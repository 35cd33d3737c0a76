"""The Docker-free asset: what goes in, how pip is called, and reuse of an unchanged build."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

from cdk import bundling

ROOT = Path(__file__).resolve().parents[2]


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


def test_only_runtime_sources_go_in():
    files = [p.as_posix() for p in bundling.source_files()]
    assert "functions/handler.py" in files
    assert "functions/watchdog.py" in files
    assert "shared/sql/jobs/migrations/V001__app_schema.sql" in files
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


def test_prune_drops_what_the_runtime_provides(tmp_path):
    for name in ("botocore", "botocore-1.44.8.dist-info", "boto3", "s3transfer", "bin", "psycopg", "urllib3"):
        (tmp_path / name).mkdir()
    bundling._prune(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"psycopg", "urllib3"}
    shutil.rmtree(tmp_path)


def test_full_build_installs_dependencies_once_and_reuses_them_across_source_edits(tmp_path, monkeypatch):
    # Given pip replaced by a stand-in that records its calls and "installs" a package and botocore
    calls = []

    def fake_pip(cmd, check):
        calls.append(cmd)
        target = Path(cmd[cmd.index("--target") + 1])
        for package in ("croniter", "botocore"):
            (target / package).mkdir()
            (target / package / "__init__.py").write_text("")
        (target / "croniter" / "__pycache__").mkdir()

    monkeypatch.setattr(bundling.subprocess, "run", fake_pip)
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
        "functions/handler.py",
        "shared/db.py",
        "shared/sql/migrations/V001__a.sql",
    }
    assert (second / "shared" / "db.py").read_text() == "X = 3\n"
