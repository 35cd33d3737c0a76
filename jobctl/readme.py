"""The README's jobs table, generated from the registry (``make docs`` rewrites it).

A test compares the README with :func:`jobs_table`, so the table cannot drift from the
registry that the CDK app, the handlers and the CLI read.
"""

from __future__ import annotations

import re
from pathlib import Path

from shared import registry
from shared.cron import to_eventbridge

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- jobs-table:start -->", "<!-- jobs-table:end -->"
_BLOCK = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)


def jobs_table() -> str:
    lines = [
        "| job | cron (UTC) | EventBridge | what it does | timeout | needs | by hand in SQL |",
        "|---|---|---|---|---|---|---|",
    ]
    for job in registry.JOBS:
        needs = ", ".join(job.depends_on) or "-"
        lines.append(
            f"| `{job.name}` | `{job.cron}` | `{to_eventbridge(job.cron)}` | {job.description} | "
            f"{job.timeout_s} s | {needs} | `SELECT {job.sql_function}();` |"
        )
    return "\n".join(lines)


def render(text: str) -> str:
    """``text`` with the block between the markers replaced by the current table."""
    if not _BLOCK.search(text):
        raise ValueError(f"README has no {START} ... {END} block")
    return _BLOCK.sub(lambda _: f"{START}\n{jobs_table()}\n{END}", text)


def main() -> None:
    README.write_text(render(README.read_text()))


if __name__ == "__main__":
    main()
