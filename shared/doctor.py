"""``jobctl doctor``: what ``migrate`` and the cutover would meet on this database, changing
nothing (docs/moving-from-pg-cron.md, "The order of the steps"). Its verdict
(:attr:`Report.ok`) is whether ``migrate`` would succeed: it tries the pending migrations in a
transaction it rolls back, and compares the guide's objects before and inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from shared import cutover, exposure, pooler, registry
from shared.db import Conn, close_quietly, connect, transaction
from shared.errors import JobsError, translate
from shared.queries import load

Q = load("doctor")
JOB_ROLE = "scheduled_jobs_runner"
TRIAL_LOCK_TIMEOUT_MS = 2_000
TRIAL_STATEMENT_TIMEOUT_MS = 120_000
GUIDE_RELATIONS = ("cron_job_logs", "v_recent_cron_jobs", "v_cron_job_stats")
GUIDE_FUNCTIONS = tuple(job.sql_function for job in registry.JOBS)


@dataclass
class Report:
    """Sections for a person (rendered by jobctl) and for ``--json``; ``problems`` make migrate refuse."""

    sections: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    migrate_would: str = "succeed"  # "succeed", "refuse" or "unknown"

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "migrate_would": self.migrate_would,
            "problems": self.problems,
            "warnings": self.warnings,
            **self.sections,
        }


def diagnose(url: str) -> Report:
    """Every check, on a connection of its own (and a second one for the pooler probe)."""
    report = Report()
    conn = connect(url)
    try:
        report.sections["server"] = pooler.server(conn)
        report.sections["pooler"] = pooler.detect(conn, url)
        if report.sections["pooler"]["transaction_pooler"]:
            report.warnings.append(
                "a transaction-mode pooler is in the way: fine for migrate and the jobs (they keep no "
                "session state); use this URL for them"
            )
        report.sections["contract"] = _contract(conn, report)
        report.sections["privileges"] = _privileges(conn, report)
        report.sections["guide_objects"] = _trial(conn, report)
        report.sections["job_role"] = _job_role(conn, report)
        report.sections["pg_cron"] = _pg_cron(conn, report)
        report.sections["exposure"] = _exposure(conn, report)
    finally:
        close_quietly(conn)
    return report


# --------------------------------------------------------------------------- contract (adopt-db's check)


def _contract(conn: Conn, report: Report) -> dict[str, Any]:
    """The written contract's gaps, from ``shared.contract.check`` when this version has it."""
    try:
        from shared import contract  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return {"checked": False, "gaps": [], "note": "this version has no written contract check"}
    check: Callable[[Conn], Any] = contract.check
    try:
        found = check(conn)
    except JobsError as exc:  # a check that raises one error listing every gap
        gaps = [str(exc)]
    else:
        gaps = [str(g) for g in (found or [])]
    report.problems.extend(f"contract: {g}" for g in gaps)
    return {"checked": True, "gaps": gaps}


# --------------------------------------------------------------------------- privileges and role


def _vacuum_tables() -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for job in registry.JOBS for t in job.vacuum_tables))


def _privileges(conn: Conn, report: Report) -> dict[str, Any]:
    row = dict(conn.execute(Q["privileges"]).fetchone() or {})
    version = conn.execute("SELECT current_setting('server_version_num')::int AS v").fetchone()["v"]  # type: ignore[index]
    if version >= 170000:
        rows = conn.execute(Q["maintain_grantable"], {"tables": list(_vacuum_tables())}).fetchall()
        row["maintain_grantable"] = [r["name"] for r in rows if r["grantable"]]
        row["maintain_not_grantable"] = [r["name"] for r in rows if r["present"] and not r["grantable"]]
        if row["maintain_not_grantable"]:
            report.warnings.append(
                "cannot grant MAINTAIN on " + ", ".join(row["maintain_not_grantable"]) + ": "
                "database-maintenance will skip VACUUM there (run migrate as the tables' owner)"
            )
    else:
        row["maintain"] = "Postgres 15/16 have no MAINTAIN: only a table's owner may VACUUM it"
    if not row.get("create_in_public"):
        report.problems.append(f"{conn.info.user} may not create functions or tables in schema public")
    return row


def _job_role(conn: Conn, report: Report) -> dict[str, Any]:
    role = conn.execute(Q["role"], {"role": JOB_ROLE}).fetchone()
    if role is None:
        can = conn.execute(Q["privileges"]).fetchone()
        if not (can and can["create_roles"]):
            report.problems.append(f"role {JOB_ROLE} does not exist and {conn.info.user} may not create roles")
        return {"role": JOB_ROLE, "exists": False, "migrate_creates_it": bool(can and can["create_roles"])}
    functions = [job.work_function for job in registry.JOBS]
    grants = conn.execute(Q["role_grants"], {"role": JOB_ROLE, "functions": functions}).fetchone() or {}
    executable = list(grants.get("executable") or [])
    out = {
        "role": JOB_ROLE,
        "exists": True,
        "members": list(role["members"]),
        "login_members": list(role["login_members"]),
        "executes_job_functions": f"{len(executable)}/{len(functions)}",
        "reads_run_log": bool(grants.get("reads_log")),
        "writes_run_log": bool(grants.get("writes_log")),
    }
    if not role["login_members"]:
        report.warnings.append(
            f"no login user is a member of {JOB_ROLE}: create one for the Lambdas (docs/moving-from-pg-cron.md)"
        )
    return out


# --------------------------------------------------------------------------- guide-era objects (trial)


def _snapshot(conn: Conn) -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {}
    for r in conn.execute(Q["relations"], {"names": list(GUIDE_RELATIONS)}).fetchall():
        item = {"kind": r["kind"], "columns": list(r["columns"] or []), "owner": r["owner"]}
        if r["name"] == "cron_job_logs":
            item["rows"] = conn.execute(Q["log_rows"]).fetchone()["n"]  # type: ignore[index]
        objects[r["name"]] = item
    for r in conn.execute(Q["functions"], {"names": list(GUIDE_FUNCTIONS)}).fetchall():
        objects[f"{r['name']}({r['arguments']})"] = {"kind": "function", "returns": r["returns"], "owner": r["owner"]}
    return objects


def _describe(name: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if before is None:
        return "created"
    if after is None:
        return "dropped"
    kind = before["kind"]
    if kind == "table":
        added = [c for c in after["columns"] if c not in before["columns"]]
        gone = [c for c in before["columns"] if c not in after["columns"]]
        parts = [f"upgraded in place, {before.get('rows', 0):,} rows -> {after.get('rows', 0):,}"]
        if added:
            parts.append("columns added: " + ", ".join(added))
        if gone:
            parts.append("columns renamed or dropped: " + ", ".join(gone))
        return "; ".join(parts) if (added or gone or before.get("rows") != after.get("rows")) else "kept as is"
    if kind == "function":
        if before["returns"] != after["returns"]:
            return f"replaced (returns {before['returns']} -> {after['returns']})"
        return "replaced by the jobs layer's" if before != after else "kept (already the jobs layer's)"
    return "replaced" if before != after else "kept"


def _trial(conn: Conn, report: Report) -> dict[str, Any]:
    from shared.migrations import migrate, pending

    migrated = bool(conn.execute(Q["migrated"]).fetchone()["present"])  # type: ignore[index]
    migrated = migrated and conn.execute(Q["jobs_layer_versions"]).fetchone()["n"] > 0  # type: ignore[index]
    before = _snapshot(conn)
    after: dict[str, dict[str, Any]] = {}
    applied: list[str] = []
    try:
        with transaction(conn, rollback=True):
            conn.execute(
                "SELECT set_config('lock_timeout', %(l)s, true), set_config('statement_timeout', %(s)s, true)",
                {"l": str(TRIAL_LOCK_TIMEOUT_MS), "s": str(TRIAL_STATEMENT_TIMEOUT_MS)},
            )
            todo = [m.path.name for m in pending(conn)]
            applied = migrate(conn)
            after = _snapshot(conn)
    except JobsError as exc:
        busy = "lock timeout" in str(exc) or "canceling statement due to lock timeout" in str(exc)
        if busy:
            report.migrate_would = "unknown"
            report.warnings.append(f"could not try the migrations (a table was busy): {exc}")
        else:
            report.migrate_would = "refuse"
            if not (type(exc).__name__ == "ContractError" and report.sections["contract"].get("gaps")):
                report.problems.append(str(exc))  # (the contract's gaps are listed once, above)
        return {"previously_migrated": migrated, "pending": [], "objects": [], "trial": str(exc)}
    except psycopg.Error as exc:
        report.migrate_would = "unknown"
        report.warnings.append(f"could not try the migrations: {translate(exc, what='trying the migrations')}")
        return {"previously_migrated": migrated, "pending": [], "objects": [], "trial": "failed to run"}
    report.migrate_would = "refuse" if report.problems else "succeed"
    names = sorted(set(before) | set(after))
    objects = [
        {
            "name": name,
            "kind": (before.get(name) or after.get(name) or {}).get("kind"),
            "found": name in before,
            "migrate_will": _describe(name, before.get(name), after.get(name)),
        }
        for name in names
    ]
    lost = [str(o["name"]) for o in objects if o["migrate_will"] == "dropped"]
    if lost:
        report.warnings.append("migrate drops: " + ", ".join(lost))
    return {"previously_migrated": migrated, "pending": todo or applied, "objects": objects, "trial": "rolled back"}


# --------------------------------------------------------------------------- pg_cron


def _pg_cron(conn: Conn, report: Report) -> dict[str, Any]:
    if not cutover.pg_cron_installed(conn):
        return {"installed": False, "registry_jobs": [], "other_jobs": [], "cutovers": []}
    jobs = [c.to_dict() for c in cutover.scheduled(conn)]
    active = sorted({j["job"] for j in jobs if j["active"]})
    fired_too: list[str] = []
    if conn.execute("SELECT to_regclass('public.cron_job_logs') IS NOT NULL AS p").fetchone()["p"]:  # type: ignore[index]
        try:
            with transaction(conn, rollback=True):
                rows = conn.execute(Q["recent_deferrals"]).fetchall()
            fired_too = sorted({r["job_name"] for r in rows} & set(active))
        except psycopg.Error:
            fired_too = []  # a guide-era run log without the runner's columns
    if fired_too:
        report.warnings.append(
            "pg_cron and EventBridge both schedule " + ", ".join(fired_too) + ": the runner leaves their "
            "occurrences to pg_cron until `jobctl cutover`"
        )
    elif active:
        report.warnings.append(
            f"pg_cron runs {len(active)} registry job(s): once the rules are deployed, run `jobctl cutover`"
        )
    return {
        "installed": True,
        "registry_jobs": jobs,
        "other_jobs": [dict(r) for r in cutover.other_jobs(conn)],
        "both_schedule": fired_too,
        "cutovers": [dict(r) for r in cutover.records(conn)],
    }


# --------------------------------------------------------------------------- exposure (api's check)


def _exposure(conn: Conn, report: Report) -> dict[str, Any]:
    """Jobs-layer objects Supabase's anon/authenticated can reach (``shared.exposure.exposed_objects``),
    each with the statement that closes it; ``jobctl migrate`` closes them all."""
    reachable = [asdict(e) for e in exposure.exposed_objects(conn)]
    if reachable:
        report.warnings.append(
            f"{len(reachable)} jobs-layer object(s) reachable by anon/authenticated (or with row-level "
            "security off): run `jobctl migrate`, which closes them all"
        )
    return {"checked": True, "reachable": reachable}
