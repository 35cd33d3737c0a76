"""What jobctl prints: rich tables for people, ``--json`` for scripts.

Data goes to stdout; progress, notes and errors go to stderr, so ``--json`` output is
always exactly one JSON document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def show(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """``data`` as one JSON document (``--json``, for scripts), else through ``render`` (for people)."""
    if as_json:
        print_json(data)
    else:
        render(data)


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


# --------------------------------------------------------------------------- the commands' tables

LOG_TABLE = ("id", "job", "status", "trigger", "as_of", "started", "ms", "summary / error")


def print_logs(records: Sequence[Mapping[str, Any]], title: str) -> None:
    """Rows of ``cron_job_logs``: the error, else the summary, in the last column."""
    rows = []
    for r in records:
        meta = r.get("metadata") or {}
        flags = ", ".join(f for f in ("forced", "dry_run") if r.get(f))
        trigger = r["trigger"] + (f" ({flags})" if flags else "")
        detail = r.get("error_message") or meta.get("summary") or ""
        rows.append(
            [r["id"], r["job_name"], r["status"], trigger, r["as_of"], r["started_at"], r["execution_time_ms"], detail]
        )
    print_table(title, LOG_TABLE, rows)


def print_stats(records: Sequence[Mapping[str, Any]], title: str = "Job statistics (v_cron_job_stats)") -> None:
    keys = ("job_name", "total_runs", "successful_runs", "failed_runs", "skipped_runs", "avg_execution_time_ms")
    print_table(
        title,
        ["job", "total runs", "succeeded", "failed", "skipped", "avg ms", "last run"],
        [[*(r[k] for k in keys), r["last_run_at"]] for r in records],
    )


def tally_json(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """``jobctl.schedules.JobTally`` rows as JSON objects."""
    return [
        {
            "job": r.job,
            "fired": r.fired,
            "succeeded": r.succeeded,
            "failed": r.failed,
            "skipped": r.skipped,
            "retried": r.retried,
            "avg_ms": round(r.avg_ms, 3),
        }
        for r in rows
    ]


def print_tally(rows: Iterable[Any], title: str) -> None:
    print_table(
        title,
        ["job", "fired", "succeeded", "failed", "skipped", "retried", "avg ms"],
        [[r.job, r.fired, r.succeeded, r.failed, r.skipped, r.retried, r.avg_ms] for r in rows],
    )


def print_jobs(rows: Sequence[Mapping[str, Any]]) -> None:
    """``jobctl list``'s rows."""
    print_table(
        f"{len(rows)} jobs (times in UTC)",
        ["job", "cron", "EventBridge", "schedule", "timeout", "depends on", "next run"],
        [
            [
                r["job"],
                r["cron"],
                r["eventbridge"],
                r["schedule"],
                f"{r['timeout_s']} s",
                r["depends_on"],
                r["next_run"],
            ]
            for r in rows
        ],
    )


def print_rule(rule: Mapping[str, Any], as_json: bool, verb: str) -> None:
    """An EventBridge rule after ``pause``/``resume``/``reschedule``."""
    if as_json:
        keys = {"rule": "Name", "state": "State", "schedule": "ScheduleExpression", "arn": "Arn"}
        print_json({key: rule.get(field) for key, field in keys.items()})
        return
    stdout().print(
        f"{verb} {rule.get('Name')}: {styled(rule.get('State'))}, {rule.get('ScheduleExpression')}", highlight=False
    )


def print_status(records: Sequence[Mapping[str, Any]], prefix: str) -> None:
    """``jobctl status``: each deployed rule next to its last runs."""
    print_table(
        "Deployed schedules" + (f" (prefix {prefix!r})" if prefix else ""),
        ["job", "state", "schedule", "last run", "status", "last success", "failed 24h"],
        [
            [
                r["job"],
                r["state"],
                (r["schedule"] or "-") + (" (differs from registry)" if r["drift"] else ""),
                r["last_run_at"],
                r["last_status"],
                r["last_success_at"],
                r["failed_24h"],
            ]
            for r in records
        ],
    )


def outcome_json(outcome: Any) -> dict[str, Any]:
    """A ``jobctl.schedules.Outcome`` as one JSON object (``jobctl scheduler --json`` prints one a line)."""
    result = outcome.result or {}
    return {
        "job": outcome.occurrence.job,
        "at": outcome.occurrence.at,
        "status": outcome.status,
        "attempts": outcome.attempts,
        "duration_ms": round(outcome.duration_ms, 3),
        "error": outcome.error,
        "summary": result.get("summary"),
    }


def print_outcome(outcome: Any, as_json: bool) -> None:
    """One scheduler run, as it happens."""
    if as_json:
        print(json.dumps(jsonable(outcome_json(outcome))), flush=True)
        return
    from shared.events import iso

    result = outcome.result or {}
    detail = outcome.error or fmt(result.get("summary") or result.get("reason"))
    occ = outcome.occurrence
    stdout().print(
        f"{iso(occ.at)}  {occ.job:<26} {styled(outcome.status):<9} {outcome.duration_ms:8.0f} ms  {detail}",
        highlight=False,
    )
