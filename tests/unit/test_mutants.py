"""The mutation suite's driver (tests/mutants): the list is well formed, and a mutant whose search
text no longer matches stops the suite instead of silently mutating nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutants.__main__ import Edit, Mutant, apply, load, problems, restore


def test_the_list_has_at_least_twelve_mutants_each_with_a_reason_and_tests():
    mutants = load()
    assert len(mutants) >= 12
    assert all(m.reason.strip() and m.tests and m.edits for m in mutants)
    assert all(e.search != e.replace for m in mutants for e in m.edits)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "code.py").write_text("x = 1\nraise error from None\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_code.py").write_text("def test_x():\n    assert True\n")
    return tmp_path


def mutant(search: str, count: int = 1, test: str = "tests/test_code.py::test_x") -> Mutant:
    return Mutant("m", "why", (test,), (Edit("code.py", search, "return result\n", count),))


def test_a_matching_mutant_has_no_problem_and_is_applied_then_restored(tree):
    m = mutant("raise error from None\n")
    assert problems([m], tree) == []
    originals = apply(m, tree)
    assert (tree / "code.py").read_text() == "x = 1\nreturn result\n"
    restore(originals)
    assert (tree / "code.py").read_text() == "x = 1\nraise error from None\n"


def test_a_search_text_that_no_longer_matches_is_reported(tree):
    [problem] = problems([mutant("raise error\n    from None")], tree)
    assert problem.startswith("m: the search text occurs 0 times in code.py, not 1")


def test_a_search_text_found_more_often_than_listed_is_reported(tree):
    (tree / "code.py").write_text("raise error from None\nraise error from None\n")
    assert "occurs 2 times in code.py, not 1" in problems([mutant("raise error from None")], tree)[0]


def test_a_missing_test_or_file_is_reported(tree):
    assert problems([mutant("x = 1", test="tests/test_code.py::test_gone")], tree) == [
        "m: no test tests/test_code.py::test_gone"
    ]
    gone = Mutant("m", "why", ("tests/test_code.py::test_x",), (Edit("nope.py", "a", "b"),))
    assert problems([gone], tree) == ["m: nope.py does not exist"]
