"""The README's jobs table is the registry's (run `make docs` after changing the registry)."""

from __future__ import annotations

from jobctl.readme import README, jobs_table, render
from shared import registry


def test_readme_jobs_table_matches_the_registry():
    text = README.read_text()
    assert render(text) == text, "README jobs table is stale: run `make docs`"


def test_the_table_lists_every_job_with_its_eventbridge_schedule():
    table = jobs_table()
    for job in registry.JOBS:
        assert f"| `{job.name}` | `{job.cron}` |" in table
    assert "`cron(0 0 ? * SUN *)`" in table
