"""The chaos soak's driver: simulate every registry schedule over a window, with or without faults.

Each occurrence is delivered through :func:`shared.runner.run` (trigger ``schedule``), the
way EventBridge and Lambda's asynchronous invocation deliver it:

- a failed attempt (the run raised) is retried like Lambda's async retries: one minute
  later, then two minutes later; after the third failure the event goes to the dead-letter
  queue and an operator re-drives it (15 minutes later, again until it succeeds: counted
  in ``redrives``). A run that returned (succeeded or skipped) ends the chain, as on Lambda.
- time is simulated: the clock of each attempt is the occurrence's time plus the retry
  delays, and a ``running`` row's deadline is judged in that clock (its claim time is
  carried in the request id), so a deadline expires exactly when it would have on AWS.
- every retry of an occurrence is delivered before the next occurrence of any job, so the
  faulty simulation does the same work in the same order as the clean one; what differs is
  everything that happens around each occurrence.

The faults (chosen at random from a seed, reproducibly):

- ``duplicate``: the same occurrence delivered again after it succeeded.
- ``concurrent``: two or three deliveries of the same occurrence at once, on threads (each
  thread has its own connection: shared.db is thread-local).
- ``terminate``: the run's backend is terminated (pg_terminate_backend from another
  connection) after the job's SQL did its work, before the transaction committed.
- ``timeout``: the run's budget is one second and its log row is locked by another session,
  so its final statement waits past the budget and is cancelled (lock/statement timeout).
- ``abandon``: a run claims the occurrence, does the work in an open transaction and
  vanishes (its connection dropped, its row never closed), as when Lambda kills a run at its
  timeout; Lambda retries after that timeout, when the row's deadline has passed.
- ``outage``: the database refuses connections (and drops the open ones) in the middle of
  a run, so the run cannot even record its failure; connections come back before the retry.
- ``restart_between`` / ``restart_during``: the server restarts before a run (the runner's
  connection is stale) or in the middle of one (embedded server only).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from jobctl.local import Occurrence, occurrences
from shared import execution, registry, runner
from shared.db import close_quietly, connect, is_usable, reset_connection
from shared.errors import JobsError
from shared.events import RunRequest, Trigger
from shared.observability import metrics

FAILING = ("terminate", "timeout", "abandon", "outage", "restart_during")
BENIGN = ("duplicate", "concurrent", "restart_between")
NEEDS_SERVER = frozenset({"restart_during", "restart_between"})
#: Lambda's asynchronous retries: one minute after the first failure, two after the second.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=2))
REDRIVE_DELAY = timedelta(minutes=15)
TIMEOUT_BUDGET_S = 1.0
LOCK_RELEASE_S = 2.5  # the timed-out run's failure can be recorded once the lock is gone

_original_call_work = execution.call_work


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class OccurrencePlan:
    benign: str | None = None
    failing: list[str] = field(default_factory=list)


@dataclass
class FaultRecord:
    kind: str
    job: str
    as_of: datetime
    request_ids: list[str]


@dataclass
class Report:
    occurrences: int = 0
    deliveries: int = 0
    attempts: int = 0
    redrives: int = 0
    faults: list[FaultRecord] = field(default_factory=list)
    skipped_returns: int = 0
    seconds: float = 0.0

    def fault_counts(self) -> dict[str, int]:
        return dict(Counter(f.kind for f in self.faults))


def make_plan(
    plan: list[Occurrence], seed: int, *, per_job: float, kinds: tuple[str, ...], caps: dict[str, int]
) -> dict[tuple[str, datetime], OccurrencePlan]:
    """Which occurrences get which faults: about ``per_job`` faulted occurrences per job (rare
    jobs as much as frequent ones), every kind at least once, ``caps`` bounding slow kinds."""
    rng = random.Random(seed)
    per_job_count = Counter(o.job for o in plan)
    used: Counter[str] = Counter()
    failing_kinds = [k for k in FAILING if k in kinds]
    benign_kinds = [k for k in BENIGN if k in kinds]

    def pick(options: list[str]) -> str | None:
        allowed = [k for k in options if used[k] < caps.get(k, 10**9)]
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
    # every kind at least once, and at least one occurrence re-driven from the DLQ
    free = [o for o in plan if (o.job, o.at) not in out]
    rng.shuffle(free)
    for kind in kinds:
        if used[kind] == 0 and free:
            occ = free.pop()
            out[(occ.job, occ.at)] = OccurrencePlan(benign=kind) if kind in BENIGN else OccurrencePlan(failing=[kind])
            used[kind] += 1
    if failing_kinds and not any(len(p.failing) >= 3 for p in out.values()) and free:
        occ = free.pop()
        out[(occ.job, occ.at)] = OccurrencePlan(failing=[rng.choice(["terminate", "abandon", "timeout"])] * 3)
    return out


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
        caps: dict[str, int] | None = None,
        traffic: Callable[[psycopg.Connection, datetime], None] | None = None,
    ) -> None:
        self.url = url
        self.admin_url = admin_url
        self.dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        self.server = server
        self.seed = seed
        self.per_job = per_job
        self.caps = caps or {}
        self.traffic = traffic
        self.report = Report()
        self._ctl: psycopg.Connection | None = None
        self._in_run: str | None = None
        self._n = 0

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

    # ------------------------------------------------------------------ faults inside a run

    def _call_work(
        self, conn: psycopg.Connection, job: registry.Job, as_of: datetime, params: Any = None
    ) -> execution.Summary:
        kind, self._in_run = self._in_run, None
        if kind == "timeout":
            self._hold_log_row(job.name)
        summary = _original_call_work(conn, job, as_of, params)
        if kind == "terminate":
            with psycopg.connect(self.url, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s, 5000)", (conn.info.backend_pid,))
        elif kind == "restart_during":
            self.server.restart()
        elif kind == "outage":
            self._outage(True)
        return summary

    def _hold_log_row(self, job_name: str) -> None:
        holder = psycopg.connect(self.url)
        holder.execute(
            "SELECT id FROM cron_job_logs WHERE job_name = %s AND status = 'running' FOR UPDATE", (job_name,)
        )

        def release() -> None:
            close_quietly(holder)  # rolls back: the lock is gone

        threading.Timer(LOCK_RELEASE_S, release).start()

    def _outage(self, down: bool) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(self.dbname), sql.SQL("false" if down else "true")
                )
            )
            if down:
                admin.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.dbname,),
                )

    # ------------------------------------------------------------------ deliveries

    def _request(self, occ: Occurrence) -> RunRequest:
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{occ.job}@{iso(occ.at)}"))
        return RunRequest(job=registry.get(occ.job), as_of=occ.at, trigger=Trigger.SCHEDULE, event_id=event_id)

    def attempt(self, occ: Occurrence, kind: str | None, rid: str) -> tuple[bool, timedelta]:
        """One invocation. Returns (returned normally, how long it took in simulated time)."""
        self.report.attempts += 1
        job = registry.get(occ.job)
        if kind == "abandon":
            conn = connect(self.url)
            claim = runner._claim(conn, self._request(occ), rid)
            if claim.skipped_reason is not None:  # an earlier dead attempt still holds the slot:
                conn.close()  # the runner raised (see runner._claim) before any work
                return False, timedelta(seconds=1)
            conn.execute("BEGIN")
            _original_call_work(conn, job, occ.at)
            conn.close()  # the Lambda is gone: the transaction rolls back, the row stays 'running'
            return False, timedelta(seconds=job.lambda_timeout_s)  # Lambda reports its timeout
        self._in_run = kind
        try:
            result = runner.run(
                self._request(occ), request_id=rid, budget_s=TIMEOUT_BUDGET_S if kind == "timeout" else None
            )
        except JobsError:
            return False, timedelta(seconds=1)
        finally:
            self._in_run = None
            if kind == "outage":
                self._outage(False)
            metrics.clear_metrics()
        if result.status is runner.Status.SKIPPED:
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
            rid = self._rid(kind or tag or "delivery", at)
            rids.append(rid)
            returned, took = self.attempt(occ, kind, rid)
            if returned:
                return rids
            failures += 1
            if failures <= len(RETRY_DELAYS):
                at = at + took + RETRY_DELAYS[failures - 1]
            else:
                self.report.redrives += 1
                at = at + took + REDRIVE_DELAY
            if failures > 60:
                raise AssertionError(f"{occ.job} {iso(occ.at)} never succeeded: {rids}")

    def concurrent(self, occ: Occurrence, copies: int) -> list[str]:
        rids = [self._rid("concurrent", occ.at) for _ in range(copies)]
        self.expire(occ.at)
        outcome: dict[str, bool] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(copies)

        def deliver(rid: str) -> None:
            try:
                barrier.wait(timeout=30)
                outcome[rid] = self.attempt(occ, None, rid)[0]
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
            if not outcome[rid]:  # e.g. recorded as a duplicate and raised: retried like any failure
                self.chain(occ, occ.at + timedelta(seconds=1) + RETRY_DELAYS[0], [], "retry", already_failed=1)
        return rids

    # ------------------------------------------------------------------ the simulation

    def run(self, start: datetime, days: int) -> Report:
        plan_list = occurrences(start, start + timedelta(days=days))
        kinds = tuple(k for k in FAILING + BENIGN if self.server is not None or k not in NEEDS_SERVER)
        plan = (
            {}
            if self.seed is None
            else make_plan(plan_list, self.seed, per_job=self.per_job, kinds=kinds, caps=self.caps)
        )
        started = time.monotonic()
        hour: datetime | None = None
        rng = random.Random(self.seed)
        execution.call_work = self._call_work  # type: ignore[assignment]
        try:
            for occ in plan_list:
                self.report.occurrences += 1
                this_hour = occ.at.replace(minute=0, second=0, microsecond=0)
                if self.traffic is not None and this_hour != hour:
                    hour = this_hour
                    self.traffic(self.ctl(), this_hour)
                p = plan.get((occ.job, occ.at), OccurrencePlan())
                if p.benign == "restart_between":
                    self.server.restart()
                if p.benign == "concurrent":
                    rids = self.concurrent(occ, rng.choice([2, 3]))
                else:
                    rids = self.chain(occ, occ.at, p.failing)
                if p.benign == "duplicate":
                    dup = self.chain(occ, occ.at + timedelta(minutes=5), [], "duplicate")
                    self.report.faults.append(FaultRecord("duplicate", occ.job, occ.at, dup[:1]))
                elif p.benign is not None:
                    self.report.faults.append(
                        FaultRecord(p.benign, occ.job, occ.at, rids if p.benign == "concurrent" else rids[:1])
                    )
                for i, kind in enumerate(p.failing):
                    self.report.faults.append(FaultRecord(kind, occ.job, occ.at, [rids[i]]))
        finally:
            execution.call_work = _original_call_work  # type: ignore[assignment]
            reset_connection()
            self.close()
        self.report.seconds = time.monotonic() - started
        return self.report


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


def snapshot(url: str, exclude: tuple[str, ...] = ("cron_job_logs", "schema_migrations")) -> dict[str, list[tuple]]:
    """Every application table and materialized view, row for row, sorted.

    Surrogate identity ids are left out: a rolled-back insert consumes a sequence value and
    rows inserted by one statement may take their ids in a different order, so the faulty
    database may number the same rows differently. Every other column is compared, and a
    foreign key to an identity id is compared as the content of the row it references.
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
        return tuple((c, value(t, c, v)) for c, v in r.items() if (t, c) not in identity)

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
