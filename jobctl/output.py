"""What jobctl prints: rich tables for people, ``--json`` for scripts.

Data goes to stdout; progress, notes and errors go to stderr, so ``--json`` output is
always exactly one JSON document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "running": "cyan",
    "ENABLED": "green",
    "DISABLED": "yellow",
    "NOT DEPLOYED": "red",
}


def _width(stream: Any) -> int | None:
    # a terminal tells its width; a pipe or a file gets wide lines rather than 80 columns
    try:
        return None if stream.isatty() else 200
    except (AttributeError, ValueError):
        return 200


def stdout() -> Console:
    # created per call: CliRunner (and pipes) swap sys.stdout between commands
    return Console(file=sys.stdout, soft_wrap=False, width=_width(sys.stdout))


def stderr() -> Console:
    return Console(file=sys.stderr, soft_wrap=False)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(data), indent=2, sort_keys=False) + "\n")


def note(message: str) -> None:
    """A line for the person at the terminal (stderr)."""
    stderr().print(message, highlight=False)


def error_line(message: str) -> None:
    sys.stderr.write(f"jobctl: error: {message}\n")


def styled(value: Any) -> str:
    text = fmt(value)
    style = _STATUS_STYLE.get(text)
    return f"[{style}]{text}[/]" if style else text


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal | float):
        return f"{value:,.1f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value) or "-"
    return str(value)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    status_columns: Sequence[str] = ("status", "state"),
) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        numeric = column.endswith(("runs", "_ms", " ms", "ms", "count")) or column in {
            "fired",
            "succeeded",
            "failed",
            "skipped",
            "retried",
            "total",
            "timeout",
            "id",
        }
        out.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        out.add_row(
            *[
                styled(v) if c in status_columns else fmt(v).replace("[", r"\[")
                for c, v in zip(columns, row, strict=True)
            ]
        )
    return out


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    stdout().print(table(title, columns, rows))


def print_records(title: str | None, records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A table of dict rows, showing ``columns`` (the JSON form carries every key)."""
    print_table(title, columns, [[r.get(c) for c in columns] for r in records])


def print_result(result: Mapping[str, Any]) -> None:
    """One run's result (the handler's return value) as a two-column table."""
    rows: list[tuple[str, Any]] = []
    for key in ("job", "status", "as_of", "trigger", "dry_run", "forced", "duration_ms", "log_id", "reason"):
        if key in result and result[key] is not None:
            rows.append((key, result[key]))
    for key, value in (result.get("summary") or {}).items():
        rows.append((f"  {key}", value))
    for key, value in result.items():
        if key not in {r[0] for r in rows} and key != "summary":
            rows.append((key, value))
    if not rows:
        stdout().print("(the function returned an empty result)")
        return
    out = Table(show_header=False, box=None, pad_edge=False)
    out.add_column(style="bold")
    out.add_column()
    for key, value in rows:
        out.add_row(key, styled(value) if key == "status" else fmt(value).replace("[", r"\["))
    stdout().print(out)
