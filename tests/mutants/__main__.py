"""The mutation suite (``make mutants``): break the code on purpose and check the tests notice.

Reads the curated list ``tests/mutants/mutants.toml``. In a scratch copy of the working tree
(the files git tracks or would track), it first runs every mutant's tests unmutated (they must
pass, and none may be skipped: a skipped test kills nothing), then applies each mutant in turn,
runs its tests and puts the files back. A mutant whose tests all pass *survived*: the suite
fails and names it. A mutant whose search text is not found exactly as often as it says stops
the suite before anything runs, so a refactor cannot silently neuter a mutant.

    python -m tests.mutants                 # all of them
    python -m tests.mutants NAME ...        # some of them
    python -m tests.mutants --check         # only check the list against the tree (no tests)
    python -m tests.mutants --list          # names and reasons

The tests use the worktree's embedded Postgres (``.pgdata-test``, shared with ``make test``)
or ``TEST_DATABASE_URL`` when set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIST = Path(__file__).with_name("mutants.toml")
TEST_PGDATA = ".pgdata-test"


@dataclass(frozen=True)
class Edit:
    file: str
    search: str
    replace: str
    count: int = 1


@dataclass(frozen=True)
class Mutant:
    name: str
    reason: str
    tests: tuple[str, ...]
    edits: tuple[Edit, ...]


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    killed: bool
    seconds: float
    detail: str


def load(path: Path = LIST) -> list[Mutant]:
    """The curated mutants, with their fields checked."""
    data = tomllib.loads(path.read_text())
    mutants = []
    for entry in data.get("mutant", []):
        unknown = set(entry) - {"name", "reason", "tests", "edit"}
        if (
            unknown
            or not entry.get("name")
            or not entry.get("reason")
            or not entry.get("tests")
            or not entry.get("edit")
        ):
            raise SystemExit(
                f"{path}: mutant {entry.get('name')!r} needs name, reason, tests and edit (got {sorted(entry)})"
            )
        edits = []
        for e in entry["edit"]:
            if set(e) - {"file", "search", "replace", "count"} or not e.get("search") or "replace" not in e:
                raise SystemExit(f"{path}: mutant {entry['name']!r}: an edit needs file, search and replace")
            edits.append(Edit(e["file"], e["search"], e["replace"], int(e.get("count", 1))))
        mutants.append(Mutant(entry["name"], entry["reason"], tuple(entry["tests"]), tuple(edits)))
    names = [m.name for m in mutants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SystemExit(f"{path}: mutant names used twice: {duplicates}")
    return mutants


def problems(mutants: list[Mutant], root: Path = ROOT) -> list[str]:
    """Everything that would make a mutant meaningless: text not found, tests not there."""
    found = []
    for m in mutants:
        for e in m.edits:
            path = root / e.file
            if not path.is_file():
                found.append(f"{m.name}: {e.file} does not exist")
                continue
            n = path.read_text().count(e.search)
            if n != e.count:
                found.append(
                    f"{m.name}: the search text occurs {n} times in {e.file}, not {e.count}: "
                    f"{e.search.strip().splitlines()[0][:80]!r}... (update tests/mutants/mutants.toml)"
                )
        for test in m.tests:
            file, _, name = test.partition("::")
            function = name.split("[")[0]
            path = root / file
            if not path.is_file() or (function and f"def {function}(" not in path.read_text()):
                found.append(f"{m.name}: no test {test}")
    return found


def apply(mutant: Mutant, root: Path) -> dict[Path, str]:
    """Apply the mutant's edits under ``root``; returns the original texts to put back."""
    originals: dict[Path, str] = {}
    for e in mutant.edits:
        path = root / e.file
        originals.setdefault(path, path.read_text())
        text = path.read_text()
        if text.count(e.search) != e.count:
            restore(originals)
            raise SystemExit(f"{mutant.name}: search text not found {e.count} times in {e.file}")
        path.write_text(text.replace(e.search, e.replace))
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text)


def scratch_copy(root: Path = ROOT) -> Path:
    """A copy of the files git tracks or would track (the working tree's versions)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    target = Path(tempfile.mkdtemp(prefix="mutants-"))
    for name in filter(None, listed.split("\0")):
        source = root / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    # the same embedded server as the worktree's tests (one server, started once)
    (target / TEST_PGDATA).symlink_to(root / TEST_PGDATA, target_is_directory=True)
    return target


def environment(scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(scratch)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_imports(scratch: Path) -> None:
    """The copy's code must be what the tests import (not the installed checkout's)."""
    modules = "cdk, functions, jobctl, shared, tests"
    probe = f"import {modules}; print('\\n'.join(m.__file__ for m in ({modules})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=scratch, env=environment(scratch), check=True, capture_output=True, text=True
    ).stdout.split()
    outside = [p for p in out if not Path(p).resolve().is_relative_to(scratch.resolve())]
    if outside:
        raise SystemExit(f"the scratch copy's tests would import code from elsewhere: {outside}")


def run_tests(scratch: Path, tests: tuple[str, ...], *, stop_at_first: bool) -> tuple[int, int, int, list[str]]:
    """Run ``tests`` in the copy: (tests run, failed or errored, skipped, names of the failed)."""
    report = scratch / "mutants-report.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *tests]
    if stop_at_first:
        cmd.insert(4, "-x")
    done = subprocess.run(cmd, cwd=scratch, env=environment(scratch), capture_output=True, text=True)
    if done.returncode not in (0, 1) or not report.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"pytest could not run {list(tests)} (exit {done.returncode}):\n{tail}")
    cases = ET.parse(report).getroot().iter("testcase")
    total = failed = skipped = 0
    names = []
    for case in cases:
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            names.append(f"{case.get('classname')}::{case.get('name')}")
        elif case.find("skipped") is not None:
            skipped += 1
    report.unlink()
    return total, failed, skipped, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="run only these mutants")
    parser.add_argument("--check", action="store_true", help="only check the list against the tree")
    parser.add_argument("--list", action="store_true", help="print the mutants and their reasons")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy")
    args = parser.parse_args(argv)

    mutants = load()
    if args.list:
        for m in mutants:
            print(f"{m.name:42} {m.reason}")
        return 0
    unknown = sorted(set(args.names) - {m.name for m in mutants})
    if unknown:
        print(f"unknown mutants: {unknown}", file=sys.stderr)
        return 2
    found = problems(mutants)
    if found:
        print("the mutation list does not match the tree:\n  " + "\n  ".join(found), file=sys.stderr)
        return 2
    if args.check:
        print(f"{len(mutants)} mutants match the tree")
        return 0
    chosen = [m for m in mutants if not args.names or m.name in args.names]

    started = time.monotonic()
    if not os.environ.get("TEST_DATABASE_URL"):
        from jobctl.embedded import start

        start(ROOT / TEST_PGDATA)  # once, before the copies' test runs share it
    scratch = scratch_copy()
    try:
        check_imports(scratch)
        # the tests must pass, unskipped, without any mutant: otherwise a "kill" means nothing
        baseline = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        total, failed, skipped, names = run_tests(scratch, baseline, stop_at_first=False)
        if failed or skipped or total == 0:
            print(f"without any mutant: {total} tests, {failed} failed {names}, {skipped} skipped", file=sys.stderr)
            return 2
        print(f"baseline: {total} tests pass unmutated ({time.monotonic() - started:.0f} s)")
        outcomes = []
        for m in chosen:
            t0 = time.monotonic()
            originals = apply(m, scratch)
            try:
                total, failed, skipped, names = run_tests(scratch, m.tests, stop_at_first=True)
            finally:
                restore(originals)
            killed = failed > 0
            detail = f"killed by {names[0]}" if killed else f"SURVIVED {total} tests ({skipped} skipped)"
            outcomes.append(Outcome(m, killed, time.monotonic() - t0, detail))
            print(f"  {m.name:42} {time.monotonic() - t0:5.1f} s  {detail}", flush=True)
    finally:
        if args.keep:
            print(f"scratch copy kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    survivors = [o.mutant.name for o in outcomes if not o.killed]
    killed = len(outcomes) - len(survivors)
    print(f"{killed} of {len(outcomes)} mutants killed in {time.monotonic() - started:.0f} s")
    if survivors:
        print(f"SURVIVED (the tests did not notice): {', '.join(survivors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
