"""The chaos soak's driver: simulate every registry schedule over a window, with or without faults.

Each occurrence is delivered to the Lambda handler (``functions.handler.handler``) with
EventBridge's scheduled event, the way EventBridge and Lambda's asynchronous invocation
deliver it:

- a failed attempt (the handler raised) is retried like Lambda's async retries, with the
  same event: one minute later, then two minutes later; after the third failure the event
  goes to the dead-letter queue and an operator re-drives it (15 minutes later, again until
  it succeeds: counted in ``redrives``). An attempt that returned (succeeded or skipped)
  ends the chain, as on Lambda. If it returned a skip that left its occurrence to run (a
  duplicate delivery that met a run which then died: ``metadata.deferred``), the watchdog's
  checks, every 15 minutes, find it (:func:`shared.watchdog.check`) once the dead run's
  deadline has passed and catch it up (:func:`shared.catchup.catch_up`, trigger ``catchup``):
  counted in ``catchups``. Nothing routine raises, so nothing routine is dead-lettered.
- time is simulated: the clock of each attempt is the occurrence's time plus the retry
  delays, and a ``running`` row's deadline is judged in that clock (its claim time is
  carried in the request id), so a deadline expires exactly when it would have on AWS.
- every retry of an occurrence is delivered before the next occurrence of any job, so the
  faulty simulation does the same work in the same order as the clean one; what differs is
  everything that happens around each occurrence.
- every execution of a job's SQL inserts a row into ``soak_executions`` in the job's own
  transaction, so the committed rows count how often each occurrence's work really took
  effect (the jobs are idempotent: equal tables alone cannot show doubled work).

The faults are a registry (:data:`FAULTS`) of :class:`Fault` subclasses, each saying how it is
injected and how to tell from the run log and the evidence gathered while injecting that it
really happened (a restart changed the server's start time, a terminated backend was the
run's own while its work was done, ...). :func:`observed_faults` counts the faults that were
observably injected; the soak requires a minimum of every kind, so an empty fault plan, or a
kind whose injection stopped working, fails the soak. To add a kind: subclass Fault,
implement its hooks and ``check``, and add it to FAULTS.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from functions.handler import RESERVE_S, handler
from jobctl.local import LambdaContext
from jobctl.schedules import Occurrence, occurrences
from shared import catchup, execution, registry, runner, watchdog
from shared.db import close_quietly, connect, get_connection, is_usable, reset_connection
from shared.errors import JobsError
from shared.events import eventbridge_time, iso
from shared.observability import metrics

#: Lambda's asynchronous retries: one minute after the first failure, two after the second.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=2))
REDRIVE_DELAY = timedelta(minutes=15)
WATCHDOG_INTERVAL = timedelta(minutes=15)
TIMEOUT_BUDGET_S = 1.0
LOCK_RELEASE_S = 2.5  # the timed-out run's failure can be recorded once the lock is gone
CONCURRENT_HOLD_S = 0.5  # the delivery that got the slot works this long, so the others meet it
KILLED = re.compile(r"terminat|closed the connection|could not be reached|administrator command|shut ?down")

_original_call_work = execution.call_work

EXECUTIONS_SQL = """
CREATE TABLE IF NOT EXISTS soak_executions (
    job_name    text        NOT NULL,
    as_of       timestamptz NOT NULL,
    request_id  text        NOT NULL,
    summary     jsonb       NOT NULL
)"""


class LambdaKilled(BaseException):
    """Lambda stopped the invocation (its timeout): no ``except Exception`` in the runner sees it."""


@dataclass
class Injection:
    """One fault injected into one occurrence, with what was seen while injecting it."""

    kind: str
    job: str
    as_of: datetime
    request_ids: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- the fault kinds


class Fault:
    """A kind of fault. ``failing`` kinds hit one attempt of a delivery (the attempt raises, so
    Lambda retries it); the others change how an occurrence is delivered (``deliver``)."""

    name: ClassVar[str]
    failing: ClassVar[bool] = False
    needs_server: ClassVar[bool] = False  # the embedded server (restarts)
    cap: ClassVar[int | None] = None  # at most this many per soak (slow kinds)

    # hooks, each given the simulation and this injection's record
    def deliver(self, sim: Simulation, occ: Occurrence, inj: Injection) -> list[str]:
        """Deliver the occurrence; return the request ids the check reads (benign kinds)."""
        return sim.chain(occ, occ.at, [])[:1]

    def before_work(self, sim: Simulation, inj: Injection, conn: psycopg.Connection) -> None:
        """In the run's work transaction, before the job's SQL."""

    def during_work(self, sim: Simulation, inj: Injection, conn: psycopg.Connection) -> None:
        """In the run's work transaction, after the job's SQL did its work, before the commit."""

    def after_attempt(self, sim: Simulation, inj: Injection) -> None:
        """After the attempt, whatever its outcome."""

    def budget_s(self) -> float | None:
        """The attempt's time budget (None: the job's)."""
        return None

    def check(self, inj: Injection, rows: list[dict[str, Any]]) -> bool:
        """Assert the rows of ``inj.request_ids`` tell the truth; return True if the fault was
        observably injected (not merely planned)."""
        raise NotImplementedError


class FailingFault(Fault):
    failing = True

    def check(self, inj: Injection, rows: list[dict[str, Any]]) -> bool:
        where = describe(inj, rows)
        [row] = rows
        if row["status"] == "skipped" and not inj.evidence.get("work_started"):
            # the attempt met its occurrence still held by an earlier attempt that died before
            # that one's deadline: it did no work (so the fault was not injected) and returned,
            # leaving the occurrence to the watchdog's catch-up
            assert (row["error_message"] or "").startswith(
                f"duplicate delivery: occurrence {iso(inj.as_of)} is already running"
            ), where
            return False
        assert inj.evidence.get("work_started"), where
        return self.check_run(inj, row, where)

    def check_run(self, inj: Injection, row: dict[str, Any], where: str) -> bool:
        raise NotImplementedError


class Duplicate(Fault):
    """The same occurrence delivered again after it succeeded."""

    name = "duplicate"

    def deliver(self, sim: Simulation, occ: Occurrence, inj: Injection) -> list[str]:
        first = sim.chain(occ, occ.at, [])
        inj.evidence["first"] = first[-1]
        return sim.chain(occ, occ.at + timedelta(minutes=5), [], "duplicate")[:1]

    def check(self, inj: Injection, rows: list[dict[str, Any]]) -> bool:
        [row] = rows
        assert row["status"] == "skipped", describe(inj, rows)
        assert "already succeeded in run #" in row["error_message"], describe(inj, rows)
        return True


class Concurrent(Fault):
    """Two or three deliveries of the same occurrence at once, each on its own thread and
    connection; the one that gets the slot works a little longer, so the others meet it."""

    name = "concurrent"

    def deliver(self, sim: Simulation, occ: Occurrence, inj: Injection) -> list[str]:
        return sim.concurrent(occ, sim.rng.choice([2, 3]), self)

    def during_work(self, sim: Simulation, inj: Injection, conn: psycopg.Connection) -> None:
        time.sleep(CONCURRENT_HOLD_S)

    def check(self, inj: Injection, rows: list[dict[str, Any]]) -> bool:
        where = describe(inj, rows)
        statuses = sorted(r["status"] for r in rows)
        assert statuses == ["skipped"] * (len(rows) - 1) + ["succeeded"], where
        skipped = [r["error_message"] for r in rows if r["status"] == "skipped"]
        assert all("duplicate" in m for m in skipped), where
        # concurrent for real: at least one delivery arrived while another was running
        return any(m.startswith("duplicate delivery:") and "is already running" in m for m in skipped)


class Terminate(FailingFault):
    """The run's backend is terminated (from another session) after the job's SQL did its work."""

    name = "terminate"

    def during_work(self, sim: Simulation, inj: Injection, conn: psycopg.Connection) -> None:
        pid = conn.info.backend_pid
        with psycopg.connect(sim.url, autocommit=True) as killer:
            row = killer.execute("SELECT pg_terminate_backend(%s, 5000) AS ok", (pid,)).fetchone()
        inj.evidence["terminated_pid"] = pid if row and row[0] else None

    def check_run(self, inj: Injection, row: dict[str, Any], where: str) -> bool:
        assert row["status"] == "failed" and KILLED.search(row["error_message"]), where
        return inj.evidence.get("terminated_pid") is not None


class Timeout(FailingFault):
    """A one-second budget while another session holds the run's log row: the final statement
    waits past the budget and is cancelled."""

    name = "timeout"

    def budget_s(self) -> float | None:
        return TIMEOUT_BUDGET_S

    def before_work(self, sim: Simulation, inj: Injection, conn: psycopg.Connection) -> None:
        holder = psycopg.connect(sim.url)
        held = holder.execute(
            "SELECT id FROM cron_job_logs WHERE request_id = %s AND status = 'running' FOR UPDATE",
            (inj.request_ids[0],),
        ).fetchone()
        inj.evidence["held_row"] = held[0] if held else None
        threading.Timer(LOCK_RELEASE_S, close_quietly, args=(holder,)).start()  # rolls back: the lock is gone

    def check_run(self, inj: Injection, row: dict[str, Any], where: str) -> bool:
        assert row["status"] == "failed" and "cancelled after reaching its time budget" in row["error_message"], where
        assert row["metadata"]["error_type"] == "JobTimeout", where
        return inj.evidence.get("held_row") == row["id"]


class Abandon(FailingFault):
    """Lambda kills the run at its timeout after the job's SQL did its work: the transaction is
    gone, the row is never closed; Lambda retries after that timeout, when the deadline passed."""

    name = "abandon"

    def during_work(self, sim: Simulation, inj: Injection, conn: psycopg.Connection) -> None:
        raise LambdaKilled()

    def check_run(self, inj: Injection, row: dict[str, Any], where: str) -> bool:
        return check_abandoned(inj, row, where)


class Outage(FailingFault):
    """Mid-run, the database stops accepting connections and drops the open ones, so the run
    cannot even record its failure; it comes back before the retry."""

    name = "outage"
    cap = 4

    def during_work(self, sim: Simulation, inj: Injection, conn: psycopg.Connection) -> None:
        inj.evidence["dropped"] = sim.outage(True)
        try:
            psycopg.connect(sim.url, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            inj.evidence["refused"] = "not currently accepting connections" in str(exc)

    def after_attempt(self, sim: Simulation, inj: Injection) -> None:
        if "dropped" in inj.evidence:
            sim.outage(False)

    def check_run(self, inj: Injection, row: dict[str, Any], where: str) -> bool:
        return check_abandoned(inj, row, where) and inj.evidence["dropped"] > 0 and inj.evidence.get("refused") is True


class RestartDuring(FailingFault):
    """The server restarts in the middle of a run (embedded server only)."""

    name = "restart_during"
    needs_server = True
    cap = 3

    def during_work(self, sim: Simulation, inj: Injection, conn: psycopg.Connection) -> None:
        before = sim.server_started()
        sim.server.restart()
        inj.evidence["restarted"] = sim.server_started() != before

    def check_run(self, inj: Injection, row: dict[str, Any], where: str) -> bool:
        assert row["status"] == "failed" and KILLED.search(row["error_message"]), where
        return inj.evidence.get("restarted") is True


class RestartBetween(Fault):
    """The server restarts before a run: the warm Lambda's connection is stale, and the run
    succeeds on its first attempt over a new one (embedded server only)."""

    name = "restart_between"
    needs_server = True
    cap = 3

    def deliver(self, sim: Simulation, occ: Occurrence, inj: Injection) -> list[str]:
        stale = get_connection().info.backend_pid  # the warm Lambda's connection
        before = sim.server_started()
        sim.server.restart()
        inj.evidence["restarted"] = sim.server_started() != before
        rids = sim.chain(occ, occ.at, [])
        inj.evidence["reconnected"] = get_connection().info.backend_pid != stale
        inj.evidence["attempts"] = len(rids)
        return rids[:1]

    def check(self, inj: Injection, rows: list[dict[str, Any]]) -> bool:
        [row] = rows
        assert row["status"] == "succeeded", describe(inj, rows)  # nothing failed: the runner reconnected
        return inj.evidence["restarted"] and inj.evidence["reconnected"] and inj.evidence["attempts"] == 1


def check_abandoned(inj: Injection, row: dict[str, Any], where: str) -> bool:
    # its row was never closed by its run; a later delivery closed it once its deadline passed
    assert row["status"] == "failed" and row["error_message"].startswith("abandoned:"), where
    assert row["metadata"]["abandoned"] is True, where
    return row["metadata"].get("closed_by_request") not in (None, inj.request_ids[0])


def describe(inj: Injection, rows: Iterable[dict[str, Any] | None]) -> str:
    shown = [
        None if r is None else {k: r[k] for k in ("id", "status", "request_id", "error_message", "metadata")}
        for r in rows
    ]
    return f"{inj.kind} on {inj.job} at {iso(inj.as_of)} (evidence {inj.evidence}): {shown}"


#: Every fault kind the soak injects, by name. The soak requires each (that the server allows)
#: to be observably injected a minimum number of times.
FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (Terminate(), Timeout(), Abandon(), Outage(), RestartDuring(), Duplicate(), Concurrent(), RestartBetween())
}


def applicable(server: Any) -> tuple[str, ...]:
    """The kinds that can be injected here (restarts need the embedded server)."""
    return tuple(name for name, f in FAULTS.items() if server is not None or not f.needs_server)


@dataclass
class OccurrencePlan:
    benign: str | None = None
    failing: list[str] = field(default_factory=list)


@dataclass
class Report:
    occurrences: int = 0
    deliveries: int = 0
    attempts: int = 0
    redrives: list[tuple[str, datetime, str]] = field(default_factory=list)  # (job, as_of, request id)
    injections: list[Injection] = field(default_factory=list)
    catchups: list[tuple[str, datetime, str]] = field(default_factory=list)  # (job, as_of, request id)
    raised: int = 0  # attempts the handler raised: each a Lambda retry (and, the third, a dead letter)
    skipped_returns: int = 0
    seconds: float = 0.0

    def fault_counts(self) -> dict[str, int]:
        return dict(Counter(i.kind for i in self.injections))


def make_plan(
    plan: list[Occurrence], seed: int, *, per_job: float, kinds: tuple[str, ...], minimum: int = 1
) -> dict[tuple[str, datetime], OccurrencePlan]:
    """Which occurrences get which faults: about ``per_job`` faulted occurrences per job (rare
    jobs as much as frequent ones), each kind's cap respected by the random picks, every kind
    at least ``minimum`` times on an occurrence's first attempt (where nothing before it can
    hide it), and at least one occurrence failing three times in a row (dead-lettered, then
    re-driven)."""
    rng = random.Random(seed)
    per_job_count = Counter(o.job for o in plan)
    used: Counter[str] = Counter()
    failing_kinds = [k for k in kinds if FAULTS[k].failing]
    benign_kinds = [k for k in kinds if not FAULTS[k].failing]

    def pick(options: list[str]) -> str | None:
        allowed = [k for k in options if used[k] < (FAULTS[k].cap or 10**9)]
        if not allowed:
            return None
        kind = rng.choice(allowed)
        used[kind] += 1
        return kind

    out: dict[tuple[str, datetime], OccurrencePlan] = {}
    for occ in plan:
        if rng.random() >= min(0.6, per_job / per_job_count[occ.job]):
            continue
        p = OccurrencePlan()
        if rng.random() < 0.4 and benign_kinds:
            p.benign = pick(benign_kinds)
        else:
            # consecutive failing attempts: mostly one, sometimes two, now and then three (DLQ)
            n = rng.choices([1, 2, 3], weights=[70, 20, 10])[0]
            p.failing = [k for k in (pick(failing_kinds) for _ in range(n)) if k]
        if p.benign or p.failing:
            out[(occ.job, occ.at)] = p
    # every kind at least `minimum` times first (alone on its occurrence, or its first attempt)
    first = Counter(p.benign or p.failing[0] for p in out.values())
    free = [o for o in plan if (o.job, o.at) not in out]
    rng.shuffle(free)
    for kind in kinds:
        while first[kind] < minimum and free:
            occ = free.pop()
            out[(occ.job, occ.at)] = OccurrencePlan(failing=[kind]) if FAULTS[kind].failing else OccurrencePlan(kind)
            first[kind] += 1
    dlq = [k for k in ("terminate", "timeout") if k in failing_kinds]
    if dlq and not any(len(p.failing) >= 3 for p in out.values()) and free:
        occ = free.pop()
        out[(occ.job, occ.at)] = OccurrencePlan(failing=[rng.choice(dlq)] * 3)
    return out


@dataclass
class Scenario:
    """Scripted conditions around the runs (issue 13): ``outages`` when EventBridge delivers
    nothing at all (not even the watchdog's schedule), ``actions`` done at simulated times
    (pause, resume, a run that holds a job's slot), and the watchdog checking and catching up
    every 15 minutes outside the outages. Pauses and dependency deadlines are judged by the
    simulated clock."""

    outages: list[tuple[datetime, datetime]] = field(default_factory=list)
    actions: list[tuple[datetime, Callable[[Simulation, datetime], None]]] = field(default_factory=list)

    def down(self, at: datetime) -> bool:
        return any(begin <= at < end for begin, end in self.outages)


class Simulation:
    """Deliver every occurrence in ``[start, start + days)`` to the database at ``url``."""

    def __init__(
        self,
        url: str,
        admin_url: str,
        *,
        server: Any = None,
        seed: int | None = None,
        per_job: float = 2.0,
        kinds: tuple[str, ...] | None = None,
        minimum: int = 1,
        traffic: Callable[[psycopg.Connection, datetime], None] | None = None,
    ) -> None:
        self.url = url
        self.admin_url = admin_url
        self.dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        self.server = server
        self.seed = seed
        self.per_job = per_job
        self.kinds = applicable(server) if kinds is None else kinds
        self.minimum = minimum
        self.traffic = traffic
        self.report = Report()
        self.rng = random.Random(seed)
        self._ctl: psycopg.Connection | None = None
        self._local = threading.local()  # this thread's attempt: its request id and fault
        self._n = 0
        self.start: datetime | None = None  # the window's start: when the watchdog expects occurrences from
        self.ticking = False  # the watchdog checks every 15 minutes (a scenario): no per-occurrence model

    # ------------------------------------------------------------------ plumbing

    def ctl(self) -> psycopg.Connection:
        """A control connection to the simulated database (reopened after restarts)."""
        if is_usable(self._ctl):
            try:
                assert self._ctl is not None
                self._ctl.execute("SELECT 1")
                return self._ctl
            except psycopg.Error:
                pass
        close_quietly(self._ctl)
        self._ctl = connect(self.url)
        return self._ctl

    def close(self) -> None:
        close_quietly(self._ctl)
        self._ctl = None

    def server_started(self) -> datetime:
        return self.ctl().execute("SELECT pg_postmaster_start_time() AS t").fetchone()["t"]  # type: ignore[index]

    def _rid(self, tag: str, at: datetime) -> str:
        self._n += 1
        return f"{tag}#{self._n}|{iso(at)}"

    def expire(self, at: datetime) -> None:
        """Let the deadline of every running row pass that would have passed by simulated time ``at``."""
        conn = self.ctl()
        for row in conn.execute("SELECT id, job_name, request_id FROM cron_job_logs WHERE status = 'running'"):
            claimed = datetime.fromisoformat(row["request_id"].rsplit("|", 1)[1].replace("Z", "+00:00"))
            limit = timedelta(seconds=registry.get(row["job_name"]).lambda_timeout_s)
            if at >= claimed + limit:
                conn.execute(
                    "UPDATE cron_job_logs SET deadline_at = clock_timestamp() - interval '1 ms' WHERE id = %s",
                    (row["id"],),
                )

    def outage(self, down: bool) -> int:
        """Refuse (or accept again) connections to the database; going down drops the open ones."""
        dropped = 0
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(self.dbname), sql.SQL("false" if down else "true")
                )
            )
            if down:
                dropped = len(
                    admin.execute(
                        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (self.dbname,),
                    ).fetchall()
                )
        return dropped

    # ------------------------------------------------------------------ inside a run

    def _call_work(
        self, conn: psycopg.Connection, job: registry.Job, as_of: datetime, params: Any = None
    ) -> execution.Summary:
        fault: Fault | None = getattr(self._local, "fault", None)
        inj: Injection | None = getattr(self._local, "injection", None)
        first = fault is not None and inj is not None and not inj.evidence.get("work_started")
        if first:
            fault.before_work(self, inj, conn)  # type: ignore[union-attr,arg-type]
        summary = _original_call_work(conn, job, as_of, params)
        # committed only with the job's own transaction: counts the work that took effect
        conn.execute(
            "INSERT INTO soak_executions (job_name, as_of, request_id, summary) VALUES (%s, %s, %s, %s)",
            (job.name, as_of, self._local.rid, Jsonb(summary)),
        )
        if first:
            inj.evidence["work_started"] = True  # type: ignore[union-attr]
            fault.during_work(self, inj, conn)  # type: ignore[union-attr,arg-type]
        return summary

    # ------------------------------------------------------------------ deliveries

    def event(self, occ: Occurrence) -> dict[str, Any]:
        """EventBridge's scheduled event for the occurrence (Lambda retries carry the same one)."""
        return {
            "version": "0",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{occ.job}@{iso(occ.at)}")),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": eventbridge_time(occ.at),
            "region": "eu-west-1",
            "resources": [f"arn:aws:events:eu-west-1:123456789012:rule/{occ.job}"],
            "detail": {},
        }

    def attempt(
        self, occ: Occurrence, rid: str, fault: Fault | None = None, inj: Injection | None = None
    ) -> tuple[bool, timedelta]:
        """One invocation of the Lambda handler. Returns (returned normally, simulated time it took)."""
        self.report.attempts += 1
        job = registry.get(occ.job)
        budget = fault.budget_s() if fault is not None else None
        context = dataclasses.replace(
            LambdaContext.for_job(job),
            aws_request_id=rid,
            timeout_s=job.lambda_timeout_s if budget is None else int(budget + RESERVE_S),
        )
        self._local.rid, self._local.fault, self._local.injection = rid, fault, inj
        os.environ["JOB_NAME"] = job.name  # the function's configuration (concurrent copies share the job)
        try:
            result = handler(self.event(occ), context)
        except JobsError:
            self.report.raised += 1
            return False, timedelta(seconds=1)
        except LambdaKilled:
            reset_connection()  # the killed Lambda's process (and its connection) are gone
            return False, timedelta(seconds=job.lambda_timeout_s)  # Lambda reports its timeout
        finally:
            self._local.rid = self._local.fault = self._local.injection = None
            if fault is not None and inj is not None:
                fault.after_attempt(self, inj)
            metrics.clear_metrics()
        if result["status"] == "skipped":
            self.report.skipped_returns += 1
        return True, timedelta(seconds=1)

    def chain(
        self, occ: Occurrence, at: datetime, failing: list[str], tag: str | None = None, already_failed: int = 0
    ) -> list[str]:
        """Deliver one event until an attempt returns (Lambda's retries, then DLQ re-drives)."""
        self.report.deliveries += already_failed == 0
        rids = []
        failures = already_failed
        while True:
            kind = failing[failures - already_failed] if failures - already_failed < len(failing) else None
            self.expire(at)
            redrive = failures > len(RETRY_DELAYS)
            rid = self._rid(kind or ("redrive" if redrive else tag or "delivery"), at)
            rids.append(rid)
            fault, inj = None, None
            if kind is not None:
                fault, inj = FAULTS[kind], Injection(kind, occ.job, occ.at, [rid])
                self.report.injections.append(inj)
            if redrive:
                self.report.redrives.append((occ.job, occ.at, rid))
            returned, took = self.attempt(occ, rid, fault, inj)
            if returned and not self.ticking and self.left_to_run(occ):
                return rids + self.watchdog(occ, at + took)
            if returned:
                return rids
            failures += 1
            at += took + (RETRY_DELAYS[failures - 1] if failures <= len(RETRY_DELAYS) else REDRIVE_DELAY)
            if failures > 60:
                raise AssertionError(f"{occ.job} {iso(occ.at)} never succeeded: {rids}")

    def concurrent(self, occ: Occurrence, copies: int, fault: Fault) -> list[str]:
        rids = [self._rid("concurrent", occ.at) for _ in range(copies)]
        inj = Injection(fault.name, occ.job, occ.at, rids)
        self.expire(occ.at)
        outcome: dict[str, bool] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(copies)

        def deliver(rid: str) -> None:
            try:
                barrier.wait(timeout=30)
                outcome[rid] = self.attempt(occ, rid, fault, inj)[0]
            except BaseException as exc:  # reported by the caller
                errors.append(exc)
            finally:
                reset_connection()

        threads = [threading.Thread(target=deliver, args=(rid,)) for rid in rids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        self.report.deliveries += copies
        for rid in rids:
            if not outcome[rid]:  # raised: retried like any failure
                self.chain(occ, occ.at + timedelta(seconds=1) + RETRY_DELAYS[0], [], "retry", already_failed=1)
        if self.left_to_run(occ):
            self.watchdog(occ, occ.at + timedelta(seconds=1))
        return rids

    def left_to_run(self, occ: Occurrence) -> bool:
        """The occurrence has not succeeded, and its latest row is a skip that leaves it to run."""
        row = (
            self.ctl()
            .execute(
                """SELECT NOT EXISTS (SELECT 1 FROM cron_job_logs WHERE job_name = %(j)s AND as_of = %(a)s
                                     AND status = 'succeeded')
                      AND (SELECT metadata ? 'deferred' FROM cron_job_logs WHERE job_name = %(j)s AND as_of = %(a)s
                            ORDER BY id DESC LIMIT 1) AS left""",
                {"j": occ.job, "a": occ.at},
            )
            .fetchone()
        )
        return bool(row and row["left"])

    def watchdog(self, occ: Occurrence, at: datetime) -> list[str]:
        """The watchdog's checks every 15 minutes from ``at``, until one catches the occurrence up."""
        job = registry.get(occ.job)
        rids = []
        for _ in range(12):
            at += WATCHDOG_INTERVAL
            self.expire(at)
            found = watchdog.check(self.ctl(), at, since=self.since, jobs=[job])
            mine = [d for d in found.to_catch_up if d.as_of == occ.at]
            if not mine:
                continue  # not due yet (grace), or its holder still runs
            rid = self._rid("catchup", at)
            rids.append(rid)
            self.report.catchups.append((occ.job, occ.at, rid))
            self._local.rid = rid
            try:
                [outcome] = catchup.catch_up(
                    dataclasses.replace(found, due=mine), request_id=rid, after_run=metrics.clear_metrics
                )
            finally:
                self._local.rid = None
            if outcome.status == "succeeded":
                return rids
        raise AssertionError(f"{occ.job} {iso(occ.at)} was never caught up: {rids}")

    @property
    def since(self) -> datetime | None:
        """When the watchdog expects occurrences from: the window's first one too (less the deploy slack)."""
        return None if self.start is None else self.start - watchdog.DEPLOY_SLACK

    def watchdog_tick(self, at: datetime) -> None:
        """The watchdog Lambda's check at ``at``: catch up what is unrun inside its window."""
        self.expire(at)
        found = watchdog.check(self.ctl(), at, since=self.since)
        if not found.to_catch_up:
            return
        rid = self._rid("watchdog", at)
        self._local.rid = rid
        try:
            for outcome in catchup.catch_up(found, request_id=rid, after_run=metrics.clear_metrics):
                self.report.catchups.append((outcome.job, outcome.as_of, rid))
        finally:
            self._local.rid = None

    def hold(self, job_name: str, at: datetime) -> None:
        """A run of ``job_name`` claimed at ``at`` that holds the slot until it dies at its Lambda timeout."""
        self.ctl().execute(
            """INSERT INTO cron_job_logs (job_name, status, trigger, as_of, request_id, deadline_at)
               VALUES (%s, 'running', 'manual', %s, %s, clock_timestamp() + interval '1 hour')""",
            (job_name, at, self._rid("holder", at)),
        )

    def run_scenario(self, start: datetime, days: int, scenario: Scenario) -> Report:
        """Deliver the window's occurrences around the scenario's outages and actions, with the watchdog."""
        end = start + timedelta(days=days)
        events: list[tuple[datetime, int, Any]] = [(at, 0, action) for at, action in scenario.actions]
        tick = start
        while tick < end:
            if not scenario.down(tick):
                events.append((tick, 2, None))
            tick += WATCHDOG_INTERVAL
        events += [(occ.at, 1, occ) for occ in occurrences(start, end) if not scenario.down(occ.at)]
        events.sort(key=lambda e: (e[0], e[1]))
        self.ctl().execute(EXECUTIONS_SQL)
        self.start, self.ticking = start, True
        clock = {"at": start}
        saved_now = runner.now
        runner.now = lambda: clock["at"]  # type: ignore[assignment]
        execution.call_work = self._call_work  # type: ignore[assignment]
        saved_job_name = os.environ.get("JOB_NAME")
        started = time.monotonic()
        hour: datetime | None = None
        try:
            for at, kind, item in events:
                clock["at"] = at
                this_hour = at.replace(minute=0, second=0, microsecond=0)
                if self.traffic is not None and this_hour != hour:
                    hour = this_hour
                    self.traffic(self.ctl(), this_hour)
                if kind == 0:
                    item(self, at)
                elif kind == 1:
                    self.report.occurrences += 1
                    self.chain(item, at, [])
                else:
                    self.watchdog_tick(at)
        finally:
            runner.now = saved_now  # type: ignore[assignment]
            execution.call_work = _original_call_work  # type: ignore[assignment]
            if saved_job_name is None:
                os.environ.pop("JOB_NAME", None)
            else:
                os.environ["JOB_NAME"] = saved_job_name
            reset_connection()
            self.close()
        self.report.seconds = time.monotonic() - started
        return self.report

    # ------------------------------------------------------------------ the simulation

    def run(
        self, start: datetime, days: int, *, plan: dict[tuple[str, datetime], OccurrencePlan] | None = None
    ) -> Report:
        """Deliver the window's occurrences; ``plan`` overrides the seed's fault plan."""
        plan_list = occurrences(start, start + timedelta(days=days))
        if plan is None:
            plan = (
                {}
                if self.seed is None
                else make_plan(plan_list, self.seed, per_job=self.per_job, kinds=self.kinds, minimum=self.minimum)
            )
        self.ctl().execute(EXECUTIONS_SQL)
        self.start = start
        started = time.monotonic()
        hour: datetime | None = None
        saved_job_name = os.environ.get("JOB_NAME")
        execution.call_work = self._call_work  # type: ignore[assignment]
        try:
            for occ in plan_list:
                self.report.occurrences += 1
                this_hour = occ.at.replace(minute=0, second=0, microsecond=0)
                if self.traffic is not None and this_hour != hour:
                    hour = this_hour
                    self.traffic(self.ctl(), this_hour)
                p = plan.get((occ.job, occ.at), OccurrencePlan())
                if p.benign is not None:
                    inj = Injection(p.benign, occ.job, occ.at)
                    inj.request_ids = FAULTS[p.benign].deliver(self, occ, inj)
                    self.report.injections.append(inj)
                else:
                    self.chain(occ, occ.at, p.failing)
        finally:
            execution.call_work = _original_call_work  # type: ignore[assignment]
            if saved_job_name is None:
                os.environ.pop("JOB_NAME", None)
            else:
                os.environ["JOB_NAME"] = saved_job_name
            reset_connection()
            self.close()
        self.report.seconds = time.monotonic() - started
        return self.report


# --------------------------------------------------------------------------- proving the faults happened


def observed_faults(conn: psycopg.Connection, report: Report) -> Counter[str]:
    """Check every injected fault's rows; count, per kind, the faults observably injected."""
    rows = {r["request_id"]: r for r in conn.execute("SELECT * FROM cron_job_logs").fetchall()}
    seen: Counter[str] = Counter()
    for inj in report.injections:
        found = [rows.get(rid) for rid in inj.request_ids]
        assert found and all(r is not None for r in found), describe(inj, found)
        if FAULTS[inj.kind].check(inj, found):  # type: ignore[arg-type]
            seen[inj.kind] += 1
    return seen


def observed_redrives(conn: psycopg.Connection, report: Report) -> int:
    """Re-drives from the dead-letter queue whose rows show it: three failed attempts of the
    occurrence before the re-driven one, which left its own row."""
    count = 0
    for job, as_of, rid in report.redrives:
        history = conn.execute(
            "SELECT request_id, status FROM cron_job_logs WHERE job_name = %s AND as_of = %s ORDER BY id",
            (job, as_of),
        ).fetchall()
        ids = [r["request_id"] for r in history]
        if rid in ids and sum(r["status"] != "succeeded" for r in history[: ids.index(rid)]) >= 1 + len(RETRY_DELAYS):
            count += 1
    return count


def assert_faults_observed(
    conn: psycopg.Connection, report: Report, kinds: Iterable[str], minimum: int
) -> Counter[str]:
    """Every kind observably injected at least ``minimum`` times, and at least one DLQ re-drive."""
    seen = observed_faults(conn, report)
    short = {k: seen[k] for k in kinds if seen[k] < minimum}
    assert not short, (
        f"fault kinds not observably injected at least {minimum} times: {short} "
        f"(planned: {report.fault_counts()}, observed: {dict(seen)})"
    )
    assert observed_redrives(conn, report) >= 1, f"no dead-letter re-drive was observed ({report.redrives})"
    return seen


def executions(conn: psycopg.Connection) -> dict[tuple[str, datetime], list[str]]:
    """Per occurrence, the request ids whose work was committed (``soak_executions``)."""
    out: dict[tuple[str, datetime], list[str]] = {}
    for r in conn.execute("SELECT DISTINCT job_name, as_of, request_id FROM soak_executions ORDER BY 3"):
        out.setdefault((r["job_name"], r["as_of"]), []).append(r["request_id"])
    return out


# --------------------------------------------------------------------------- app traffic

TRAFFIC_SQL = """
-- One simulated hour of app traffic before %(hour)s, identical in every database it is
-- applied to (a hash of row and hour, never random() or the clock).
WITH active AS (
    SELECT u.id, %(hour)s - interval '1 hour' + interval '1 second' * (hashint8extended(u.id, %(salt)s) & 3599) AS at
      FROM users u
     WHERE u.account_status = 'active' AND (hashint8extended(u.id, %(salt)s + 1) & 1023) < 25
)
SELECT count(record_activity(id, at, 10, 2, CASE WHEN id %% 5 = 0 THEN 1 ELSE 0 END)) FROM active;

INSERT INTO messages (conversation_id, sender_id, recipient_id, body, created_at)
SELECT u.id, u.id, r.id, 'hi',
       %(hour)s - interval '1 hour' + interval '1 second' * (hashint8extended(u.id, %(salt)s) & 3599)
  FROM users u JOIN users r ON r.id = 1 + (u.id * 7) %% %(n)s
 WHERE u.account_status = 'active' AND (hashint8extended(u.id, %(salt)s + 1) & 1023) < 25
 ORDER BY u.id;

INSERT INTO stories (user_id, created_at)
SELECT u.id, %(hour)s - interval '30 minutes'
  FROM users u
 WHERE u.account_status = 'active' AND (hashint8extended(u.id, %(salt)s + 2) & 1023) < 10
 ORDER BY u.id;

INSERT INTO story_views (story_id, viewer_id, viewed_at)
SELECT s.id, 1 + (s.user_id * 3) %% %(n)s, %(hour)s - interval '10 minutes'
  FROM stories s WHERE s.created_at = %(hour)s - interval '30 minutes'
ON CONFLICT DO NOTHING;

INSERT INTO typing_indicators (conversation_id, user_id, started_at, expires_at)
SELECT u.id %% 50, u.id, %(hour)s - interval '5 minutes', %(hour)s - interval '5 minutes' + interval '10 seconds'
  FROM users u WHERE (hashint8extended(u.id, %(salt)s + 3) & 1023) < 8
ON CONFLICT (conversation_id, user_id) DO UPDATE SET started_at = excluded.started_at, expires_at = excluded.expires_at;

INSERT INTO user_presence AS p (user_id, is_online, last_heartbeat_at)
SELECT u.id, true, %(hour)s - interval '1 minute' * (hashint8extended(u.id, %(salt)s + 4) & 31)
  FROM users u WHERE u.account_status = 'active' AND (hashint8extended(u.id, %(salt)s + 4) & 1023) < 30
ON CONFLICT (user_id) DO UPDATE SET is_online = true, last_heartbeat_at = excluded.last_heartbeat_at,
                                    went_offline_at = NULL;

-- once a day, three users report the same one (process-moderation-queue bans them)
INSERT INTO user_reports (reporter_id, reported_user_id, reason, created_at)
SELECT 1 + (t.target + k) %% %(n)s, 1 + t.target, 'spam', %(hour)s - interval '20 minutes'
  FROM (SELECT (hashint8extended(%(salt)s, 7) & 1048575) %% %(n)s AS target) t, generate_series(1, 3) k
 WHERE extract(hour FROM %(hour)s AT TIME ZONE 'UTC') = 9
 ORDER BY k;
"""


def traffic(conn: psycopg.Connection, hour: datetime) -> None:
    """Apply the hour of traffic that ends at ``hour`` (same rows in every database)."""
    n = conn.execute("SELECT max(id) AS n FROM users").fetchone()["n"]  # type: ignore[index]
    params = {"hour": hour, "salt": int(hour.timestamp()) // 3600, "n": n}
    with conn.transaction():
        for statement in TRAFFIC_SQL.split(";\n\n"):
            if statement.strip():
                conn.execute(statement, params)


# --------------------------------------------------------------------------- comparing databases

#: Columns that hold the wall-clock time of a change (not derived from as_of, on purpose):
#: user_gamification.updated_at is when update-user-streaks really changed the row, so the
#: guide's rollback by the run's logged started_at selects exactly that run's rows.
CLOCK_COLUMNS = frozenset(
    {
        ("user_gamification", "updated_at"),
        # when a batched occurrence's progress was started and last moved on (bookkeeping)
        ("job_batch_progress", "started_at"),
        ("job_batch_progress", "updated_at"),
    }
)


def snapshot(
    url: str, exclude: tuple[str, ...] = ("cron_job_logs", "schema_migrations", "soak_executions")
) -> dict[str, list[tuple]]:
    """Every application table and materialized view, row for row, sorted.

    Surrogate identity ids are left out: a rolled-back insert consumes a sequence value and
    rows inserted by one statement may take their ids in a different order, so the faulty
    database may number the same rows differently. So are the columns in CLOCK_COLUMNS, which
    record when a change really happened (wall-clock time, different in every database by
    design). Every other column is compared, and a foreign key to an identity id is compared
    as the content of the row it references.
    """
    with connect(url) as conn:
        tables = [
            r["relname"]
            for r in conn.execute(
                """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm') ORDER BY 1"""
            ).fetchall()
            if r["relname"] not in exclude
        ]
        identity = {
            (r["t"], r["c"])
            for r in conn.execute(
                """SELECT a.attrelid::regclass::text AS t, a.attname AS c FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND a.attidentity <> '' AND NOT a.attisdropped"""
            ).fetchall()
        }
        refs = {
            (r["t"], r["c"]): (r["rt"], r["rc"])
            for r in conn.execute(
                """SELECT k.conrelid::regclass::text AS t, a.attname AS c, k.confrelid::regclass::text AS rt,
                      fa.attname AS rc
                 FROM pg_constraint k
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
                 JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = k.confkey[1]
                WHERE k.contype = 'f' AND cardinality(k.conkey) = 1"""
            ).fetchall()
        }
        data: dict[str, list[dict[str, Any]]] = {
            t: conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(t))).fetchall() for t in tables
        }
    by_id = {(t, c): {r[c]: r for r in data[t]} for t, c in identity if t in data}
    memo: dict[tuple[str, Any], tuple] = {}

    def content(t: str, r: dict[str, Any]) -> tuple:
        return tuple(
            (c, value(t, c, v)) for c, v in r.items() if (t, c) not in identity and (t, c) not in CLOCK_COLUMNS
        )

    def value(t: str, c: str, v: Any) -> Any:
        target = refs.get((t, c))
        if v is None or target not in by_id:
            return v
        key = (target[0], v)
        if key not in memo:
            row = by_id[target].get(v)
            memo[key] = ("->", target[0], content(target[0], row) if row is not None else f"dangling {v}")
        return memo[key]

    return {t: sorted((content(t, r) for r in rows), key=repr) for t, rows in data.items()}


def differences(clean: dict[str, list[tuple]], faulty: dict[str, list[tuple]], limit: int = 5) -> dict[str, Any]:
    """Per table that differs: row counts and a few rows only in one or the other."""
    diff: dict[str, Any] = {}
    for t in sorted(set(clean) | set(faulty)):
        a, b = clean.get(t, []), faulty.get(t, [])
        if a != b:
            only_a = [r for r in a if r not in b][:limit]
            only_b = [r for r in b if r not in a][:limit]
            diff[t] = {"clean_rows": len(a), "faulty_rows": len(b), "only_clean": only_a, "only_faulty": only_b}
    return diff
