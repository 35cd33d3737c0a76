"""``jobctl doctor`` for a person: one block per check, then the warnings, the problems, the verdict."""

from __future__ import annotations

from typing import Any

from jobctl import output
from shared.doctor import Report


def _line(label: str, text: str) -> None:
    output.stdout().print(f"[bold]{label:<12}[/] {text}", highlight=False)


def _yes(value: Any) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"


def render(report: Report) -> None:
    for section in (_server, _pooler, _contract, _privileges, _job_role, _trial, _pg_cron, _exposure):
        section(report.sections)
    _verdict(report)


def _server(s: dict[str, Any]) -> None:
    server = s["server"]
    supported = "" if server["supported"] else " [red](unsupported: Postgres 15 or newer is needed)[/]"
    _line(
        "server", f"PostgreSQL {server['version']}, database {server['database']} as {server['user_name']}{supported}"
    )


def _pooler(s: dict[str, Any]) -> None:
    pooler = s["pooler"]
    evidence = "; ".join(pooler["evidence"]) or "none of the signs"
    kind = "[yellow]transaction pooler[/]" if pooler["transaction_pooler"] else "no transaction pooler detected"
    _line("pooler", f"{kind} ({evidence}; {pooler['method']})")


def _contract(s: dict[str, Any]) -> None:
    contract = s["contract"]
    if not contract["checked"]:
        _line("contract", contract["note"])
    else:
        _line("contract", "[green]no gaps[/]" if not contract["gaps"] else f"[red]{len(contract['gaps'])} gap(s)[/]")
        for gap in contract["gaps"]:
            output.stdout().print(f"             - {gap}", highlight=False)


def _privileges(s: dict[str, Any]) -> None:
    priv = s["privileges"]
    maintain = priv.get("maintain") or (
        "MAINTAIN grantable on every vacuumed table"
        if not priv.get("maintain_not_grantable")
        else "MAINTAIN not grantable on " + ", ".join(priv["maintain_not_grantable"])
    )
    _line(
        "privileges",
        f"superuser {_yes(priv['superuser'])}, create functions {_yes(priv['create_in_public'])}, "
        f"create roles {_yes(priv['create_roles'])}; {maintain}",
    )


def _job_role(s: dict[str, Any]) -> None:
    role = s["job_role"]
    if not role["exists"]:
        _line("jobs' role", f"{role['role']} does not exist; migrate creates it: {_yes(role['migrate_creates_it'])}")
    else:
        members = ", ".join(role["login_members"]) or "[yellow]no login member[/]"
        _line(
            "jobs' role",
            f"{role['role']}: login members {members}; executes {role['executes_job_functions']} job "
            f"functions; run log read {_yes(role['reads_run_log'])} write {_yes(role['writes_run_log'])}",
        )


def _trial(s: dict[str, Any]) -> None:
    trial = s["guide_objects"]
    pending = trial["pending"]
    _line("migrate", f"{len(pending)} pending migration(s), tried and rolled back: {trial['trial']}")
    if trial["objects"]:
        output.print_records(
            "The guide's objects and what migrate does to each",
            [{**o, "found": "yes" if o["found"] else "no"} for o in trial["objects"]],
            ["name", "kind", "found", "migrate_will"],
        )


def _pg_cron(s: dict[str, Any]) -> None:
    cron = s["pg_cron"]
    if not cron["installed"]:
        _line("pg_cron", "not installed in this database: nothing to cut over")
        return
    _line(
        "pg_cron",
        f"{len(cron['registry_jobs'])} job(s) run a registry job; {len(cron['other_jobs'])} other(s) left "
        f"alone; {len(cron['cutovers'])} cutover record(s)",
    )
    if cron["registry_jobs"]:
        output.print_records(
            "pg_cron jobs that run a registry job (jobctl cutover moves them)",
            cron["registry_jobs"],
            ["job", "jobid", "jobname", "schedule", "command", "active"],
        )


def _exposure(s: dict[str, Any]) -> None:
    exposure = s["exposure"]
    if not exposure["checked"]:
        _line("exposure", exposure["note"])
        return
    reach = exposure["reachable"]
    _line("exposure", "[green]nothing reachable by anon/authenticated[/]" if not reach else f"{len(reach)} reachable")
    for item in reach:
        what = f"{item.get('kind', '')} {item.get('name', item.get('object', ''))} ({item.get('role') or '-'})"
        fix = f": {item['fix']}" if item.get("fix") else ""
        output.stdout().print(f"             - {what}{fix}".replace("[", r"\["), highlight=False)


def _verdict(report: Report) -> None:
    for warning in report.warnings:
        output.stdout().print(f"[yellow]warning:[/] {warning}", highlight=False)
    for problem in report.problems:
        output.stdout().print(f"[red]problem:[/] {problem}", highlight=False)
    verdict = {
        "succeed": "[green]migrate would succeed[/]",
        "refuse": "[red]migrate would refuse[/]",
        "unknown": "[yellow]migrate could not be tried[/]",
    }[report.migrate_would if report.ok else "refuse"]
    output.stdout().print(verdict, highlight=False)
