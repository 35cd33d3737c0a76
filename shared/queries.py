"""Named SQL queries kept in ``.sql`` files, loaded once.

A file holds blocks introduced by ``-- name: <query_name>``; parameters are named
(``%(job_name)s``) and always bound, never formatted into the text.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

QUERIES_DIR = Path(__file__).parent / "sql" / "queries"
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def load(file: str, directory: Path = QUERIES_DIR) -> dict[str, str]:
    """The named queries of ``<directory>/<file>.sql`` (default: ``shared/sql/queries/``)."""
    text = (directory / f"{file}.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
