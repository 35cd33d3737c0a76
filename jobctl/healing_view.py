"""How ``pause``/``resume``/``reschedule``, ``watchdog``, ``backfill`` and ``describe`` print (tables and notes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jobctl import output
from shared import catchup, watchdog


def print_state(verb: str, job: str, state: Mapping[str, Any] | None, rule: Mapping[str, Any] | None) -> None:
    if rule is not None:
        output.print_rule(rule, False, verb)
    if state is None:
        output.note("note: not recorded in the database (give --database-url or DATABASE_URL, or --local)")
        return
    what = "paused" if state["paused"] else "active"
    until = f" until {output.styled(state['paused_until'])}" if state["paused"] and state["paused_until"] else ""
    note = f" ({state['note']})" if state["note"] else ""
    output.stdout().print(
        f"{verb} {job} in the database: {what}{until}, schedule {state['cron']}{note}, by {state['changed_by']}",
        highlight=False,
    )


def print_watchdog(found: watchdog.Check, outcomes: Sequence[catchup.Outcome], catch_up: bool) -> None:
    if outcomes:
        output.print_table(
            f"Caught up {sum(o.status == 'succeeded' for o in outcomes)} of {len(outcomes)} occurrence(s)",
            ["job", "as_of", "status", "reason"],
            [[o.job, o.as_of, o.status, o.reason or ""] for o in outcomes],
        )
    pending = found.to_catch_up
    if pending:
        title = "Still to catch up" if catch_up else "To catch up (inside the window; --catch-up runs them)"
        output.print_table(title, ["job", "as_of", "rows"], [[d.job, d.as_of, d.logged] for d in pending])
    if found.missed:
        output.print_table(
            "Missed (outside the catch-up window: run them with jobctl backfill)",
            ["job", "as_of", "rows"],
            [[d.job, d.as_of, d.logged] for d in found.missed],
        )
    for name, note in found.paused.items():
        output.note(f"{name} is paused{': ' + note if note else ''}; nothing is expected of it")
    if not pending and not found.missed:
        output.stdout().print(f"every occurrence due by {output.styled(found.now)} ran", highlight=False)


def print_backfill_plan(plan: Any) -> None:
    output.print_table(
        f"{plan.job.name}: {len(plan.todo)} of {len(plan.occurrences)} occurrence(s) to run"
        + (" (--force: all)" if plan.force else f" ({len(plan.already)} already succeeded)"),
        ["as_of"],
        [[at] for at in plan.todo],
    )


def print_backfill_summary(plan: Any) -> None:
    c = plan.counts()
    output.stdout().print(
        f"backfill {plan.job.name}: {c['occurrences']} occurrence(s) in range, {c['already_succeeded']} already "
        f"succeeded, ran {c['ran']}: {c['succeeded']} succeeded, {c['failed']} failed, {c['skipped']} skipped",
        highlight=False,
    )
    for r in plan.results:
        if r["status"] != "succeeded":
            output.note(f"{r['status']} {output.styled(r['as_of'])}: {r['reason']}")


def print_describe(d: Mapping[str, Any]) -> None:
    policy, state = d["policy"], d["state"]
    rows = [
        ["schedule", state["cron"] + (f" (rescheduled; registry {d['cron']})" if state["rescheduled"] else "")],
        [
            "state",
            ("paused" if state["paused"] else "active")
            + (f" until {output.styled(state['paused_until'])}" if state["paused"] and state["paused_until"] else "")
            + (f" ({state['note']})" if state["paused"] and state["note"] else ""),
        ],
        ["overlap policy", policy["overlap"]],
        ["catch-up window", policy["catchup_window"] + (" (latest only)" if policy["catchup_latest_only"] else "")],
        ["dependency deadline", policy["dependency_deadline"] if policy["depends_on"] else "-"],
        ["pause after failures", policy["pause_after_failures"]],
        ["pending catch-ups", ", ".join(output.styled(a) for a in d["pending_catch_up"]) or "-"],
        ["missed (outside the window)", ", ".join(output.styled(a) for a in d["missed"]) or "-"],
    ]
    output.print_table(f"{d['job']}: {d['description']}", ["", ""], rows)
    output.print_table(
        "Last occurrences",
        ["as_of", "runs", "succeeded"],
        [[r["as_of"], " ".join(r["runs"]) or "no run", r["succeeded"]] for r in d["last"]],
    )
    output.print_table("Next occurrences", ["as_of"], [[at] for at in d["next"]])
    if d["changes"]:
        output.print_table(
            "Changes",
            ["at", "action", "by", "note"],
            [[c["at"], c["action"], c["by"], c["note"] or ""] for c in d["changes"]],
        )
