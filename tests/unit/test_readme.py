"""The docs generated from the registry are current (run `make docs` after changing the registry)."""

from __future__ import annotations

import re

import pytest

from jobctl.readme import BLOCKS, JOBS_DOCS, README, job_page, jobs_table, render
from shared import registry


@pytest.mark.parametrize(("path", "name", "content"), BLOCKS, ids=[name for _, name, _ in BLOCKS])
def test_the_generated_blocks_match_the_registry(path, name, content):
    text = path.read_text()
    assert render(text, name, content) == text, f"{path.name}'s {name} is stale: run `make docs`"


def test_the_table_lists_every_job_with_its_eventbridge_schedule_and_its_page():
    table = jobs_table()
    for job in registry.JOBS:
        assert f"| [`{job.name}`](docs/jobs/{job.name}.md) | `{job.cron}` |" in table
    assert "`cron(0 0 ? * SUN *)`" in table


def test_docs_jobs_has_one_page_per_job_each_opening_with_its_contract():
    pages = {p.stem for p in JOBS_DOCS.glob("*.md")} - {"README"}
    assert pages == {job.name for job in registry.JOBS}
    for job in registry.JOBS:
        text = job_page(job.name).read_text()
        assert text.startswith(f"# {job.name} (`{job.cron}`"), f"{job.name}: title names the job and its cron"
        assert "**Contract.**" in text


def test_the_readme_links_only_inside_the_repository():
    targets = re.findall(r"\]\(([^)]+)\)", README.read_text())
    assert targets and not [t for t in targets if t.startswith("../")]
