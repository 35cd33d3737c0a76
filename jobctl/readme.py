"""The docs generated from the registry (``make docs`` rewrites them; a test checks they are current).

The README's jobs table (each job linking to its page) and the list of job pages in
``docs/jobs/README.md``, so neither can drift from the registry that the CDK app, the
handlers and the CLI read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from shared import registry
from shared.cron import to_eventbridge

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
JOBS_DOCS = ROOT / "docs" / "jobs"
JOBS_INDEX = JOBS_DOCS / "README.md"


def job_page(name: str) -> Path:
    """``docs/jobs/<name>.md``: the job's contract, rules and undo."""
    return JOBS_DOCS / f"{name}.md"


def jobs_table() -> str:
    lines = [
        "| job | cron (UTC) | EventBridge | what it does | timeout | needs | by hand in SQL |",
        "|---|---|---|---|---|---|---|",
    ]
    for job in registry.JOBS:
        needs = ", ".join(job.depends_on) or "-"
        lines.append(
            f"| [`{job.name}`](docs/jobs/{job.name}.md) | `{job.cron}` | `{to_eventbridge(job.cron)}` | "
            f"{job.description} | {job.timeout_s} s | {needs} | `SELECT {job.sql_function}();` |"
        )
    return "\n".join(lines)


def jobs_index() -> str:
    return "\n".join(f"- [{job.name}]({job.name}.md): {job.description}" for job in registry.JOBS)


#: Each generated block: its file, its name (``<!-- <name>:start -->`` ... ``<!-- <name>:end -->``), its text.
BLOCKS: tuple[tuple[Path, str, Callable[[], str]], ...] = (
    (README, "jobs-table", jobs_table),
    (JOBS_INDEX, "jobs-index", jobs_index),
)


def render(text: str, name: str = "jobs-table", content: Callable[[], str] = jobs_table) -> str:
    """``text`` with the block between the ``name`` markers replaced by ``content()``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not block.search(text):
        raise ValueError(f"no {start} ... {end} block")
    return block.sub(lambda _: f"{start}\n{content()}\n{end}", text)


def main() -> None:
    for path, name, content in BLOCKS:
        path.write_text(render(path.read_text(), name, content))


if __name__ == "__main__":
    main()
