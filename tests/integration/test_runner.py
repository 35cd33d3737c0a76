"""The runner: every run logged, exactly once per occurrence, never overlapping, timeouts, reconnects.

A test-only job (``job_probe``) records each execution in ``probe_effects`` so a test can
count how often the work really ran; it can sleep, fail, or return a bad summary on demand.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from shared import registry, schedule_state
from shared.db import get_connection, reset_connection
from shared.errors import DatabaseUnavailable, DependencyNotMet, JobFailed, JobTimeout
from shared.events import RunRequest, Trigger, parse_event
from shared.observability import metrics
from shared.runner import Status, run
from tests.factories import utc

PROBE = registry.Job(
    name="probe-job",
    cron="0 * * * *",
    description="test probe",
    sql_function="probe",
    summary_keys=("effects",),
    timeout_s=20,
)
AS_OF = utc(2026, 11, 28, 0, 0)

PROBE_SQL = """
CREATE TABLE probe_effects (as_of timestamptz, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION job_probe(p_as_of timestamptz) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE mode text := coalesce((SELECT value FROM probe_mode), 'ok');
BEGIN
    IF mode LIKE 'sleep:%' THEN PERFORM pg_sleep(split_part(mode, ':', 2)::float); END IF;
    IF mode = 'fail' THEN RAISE EXCEPTION 'probe failed on purpose' USING ERRCODE = '22012'; END IF;
    INSERT INTO probe_effects (as_of) VALUES (p_as_of);
    IF mode = 'bad-summary' THEN RETURN '{"nope": 1}'::jsonb; END IF;
    RETURN jsonb_build_object('effects', 1);
END $$;
CREATE TABLE probe_mode (value text);
"""


@pytest.fixture
def db(db_url, conn, monkeypatch):
    """The test database, with the probe job installed and the runner's connection pointed at it."""
    conn.execute(PROBE_SQL)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    reset_connection()
    yield conn
    reset_connection()


def set_mode(conn, mode: str) -> None:
    conn.execute("DELETE FROM probe_mode")
    conn.execute("INSERT INTO probe_mode VALUES (%s)", (mode,))


def effects(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM probe_effects").fetchone()["n"]


def log_rows(conn, job="probe-job"):
    return conn.execute("SELECT * FROM cron_job_logs WHERE job_name = %s ORDER BY id", (job,)).fetchall()


def scheduled(as_of=AS_OF, job=PROBE, **kw) -> RunRequest:
    return RunRequest(job=job, as_of=as_of, trigger=Trigger.SCHEDULE, **kw)


def test_a_scheduled_run_is_logged_running_then_succeeded_with_its_summary(db):
    # When a scheduled occurrence runs
    result = run(scheduled(), request_id="req-1")
    # Then the work ran once and its row tells the truth
    assert result.status is Status.SUCCEEDED and result.summary == {"effects": 1}
    assert effects(db) == 1
    [row] = log_rows(db)
    assert (row["status"], row["trigger"], row["as_of"], row["request_id"]) == ("succeeded", "schedule", AS_OF, "req-1")
    assert row["metadata"]["summary"] == {"effects": 1}
    assert row["finished_at"] >= row["started_at"] and row["execution_time_ms"] >= 0
    assert result.to_dict()["log_id"] == row["id"]


def test_the_running_row_is_committed_before_the_work_begins(db, db_url):
    # Given a run that is busy working
    set_mode(db, "sleep:1.5")
    thread = threading.Thread(target=run, args=(scheduled(),))
    thread.start()
    try:
        # Then another session already sees its 'running' row
        with psycopg.connect(db_url) as other:
            for _ in range(50):
                row = other.execute("SELECT status FROM cron_job_logs WHERE job_name = 'probe-job'").fetchone()
                if row:
                    break
                threading.Event().wait(0.05)
        assert row == ("running",)
    finally:
        thread.join()


def test_the_same_occurrence_delivered_twice_in_a_row_runs_once(db):
    first = run(scheduled())
    second = run(scheduled())
    assert (first.status, second.status) == (Status.SUCCEEDED, Status.SKIPPED)
    assert "already succeeded in run #" in second.reason
    assert effects(db) == 1
    assert [r["status"] for r in log_rows(db)] == ["succeeded", "skipped"]


def deliver_all(requests, *, stagger_s: float = 0.0) -> list:
    """Deliver the requests at once (each on its own thread); results or raised errors."""
    results: list = []

    def deliver(request):
        try:
            results.append(run(request))
        except Exception as exc:
            results.append(exc)

    threads = []
    for request in requests:
        threads.append(threading.Thread(target=deliver, args=(request,)))
        threads[-1].start()
        threading.Event().wait(stagger_s)
    for t in threads:
        t.join()
    return results


def test_the_same_occurrence_delivered_twice_concurrently_runs_once(db):
    # Given a slow job and two deliveries of the same occurrence at once
    set_mode(db, "sleep:1")
    results = deliver_all([scheduled(), scheduled()])
    # Then exactly one did the work; the other is a skipped duplicate, raised for no retry
    # (if the holder died, the watchdog's catch-up runs the occurrence: it is marked deferred)
    assert sorted(r.status for r in results) == [Status.SKIPPED, Status.SUCCEEDED]
    [duplicate] = [r for r in results if r.status is Status.SKIPPED]
    assert "duplicate delivery" in duplicate.reason
    assert effects(db) == 1
    skipped = next(r for r in log_rows(db) if r["status"] == "skipped")
    assert skipped["metadata"]["deferred"] == "duplicate"
    # and a later delivery finds the occurrence succeeded
    assert run(scheduled()).status is Status.SKIPPED and effects(db) == 1


def test_overlap_policy_skip_drops_the_occurrence_without_raising(db):
    # Given a job whose next occurrence covers a missed one
    job = dataclasses.replace(PROBE, overlap=registry.Overlap.SKIP)
    set_mode(db, "sleep:1")
    # When the next occurrence arrives while the previous one still runs
    results = deliver_all([scheduled(job=job), scheduled(AS_OF + timedelta(hours=1), job=job)], stagger_s=0.3)
    # Then it is recorded skipped by the policy, nothing is raised (no Lambda retry, no dead letter)
    assert not [r for r in results if isinstance(r, Exception)]
    assert effects(db) == 1
    skipped = next(r for r in log_rows(db) if r["status"] == "skipped")
    assert skipped["error_message"].startswith("overlap: run #") and "overlap policy (skip)" in skipped["error_message"]
    assert skipped["metadata"]["overlap"] == "skip" and "deferred" not in skipped["metadata"]


def test_overlap_policy_buffer_one_runs_the_waiting_occurrence_when_the_holder_ends(db):
    # Given a buffer_one job still running its 00:00 occurrence
    set_mode(db, "sleep:1")
    # When the 01:00 and 02:00 occurrences arrive meanwhile
    results = deliver_all(
        [scheduled(), scheduled(AS_OF + timedelta(hours=1)), scheduled(AS_OF + timedelta(hours=2))], stagger_s=0.3
    )
    # Then nothing is raised, 01:00 waited and ran right after 00:00, and 02:00 (the queue holds one)
    # is left deferred for the watchdog's catch-up
    assert not [r for r in results if isinstance(r, Exception)]
    rows = log_rows(db)
    ran = [r["as_of"] for r in rows if r["status"] == "succeeded"]
    assert ran == [AS_OF, AS_OF + timedelta(hours=1)]
    skipped = {r["as_of"]: r["metadata"] for r in rows if r["status"] == "skipped"}
    assert skipped[AS_OF + timedelta(hours=1)]["overlap"] == "buffered"
    assert (skipped[AS_OF + timedelta(hours=2)]["overlap"], skipped[AS_OF + timedelta(hours=2)]["deferred"]) == (
        "dropped",
        "overlap",
    )
    assert effects(db) == 2
    assert schedule_state.state(db, PROBE).pending_as_of is None


def test_a_manual_overlap_is_skipped_without_raising(db):
    set_mode(db, "sleep:1")
    thread = threading.Thread(target=run, args=(scheduled(),))
    thread.start()
    threading.Event().wait(0.3)
    result = run(RunRequest(job=PROBE, as_of=AS_OF + timedelta(minutes=5), trigger=Trigger.MANUAL))
    thread.join()
    assert result.status is Status.SKIPPED and result.reason.startswith("overlap:")


def test_a_paused_job_skips_its_scheduled_deliveries_but_runs_by_hand(db):
    # Given the job paused by an operator with a note
    schedule_state.pause(db, PROBE, by="alice", note="investigating INC-42")
    # When its scheduled occurrence arrives
    result = run(scheduled())
    # Then it is recorded skipped, saying who paused it and why, and nothing ran
    assert result.status is Status.SKIPPED and "paused by alice" in result.reason and "INC-42" in result.reason
    assert log_rows(db)[-1]["metadata"]["deferred"] == "paused" and effects(db) == 0
    # And a manual run still runs; after resume the schedule runs again
    assert run(RunRequest(job=PROBE, as_of=AS_OF, trigger=Trigger.MANUAL)).status is Status.SUCCEEDED
    schedule_state.resume(db, PROBE, by="alice")
    assert run(scheduled(AS_OF + timedelta(hours=1))).status is Status.SUCCEEDED


def test_a_pause_until_a_time_ends_by_itself(db):
    schedule_state.pause(db, PROBE, by="alice", until=datetime.now(UTC) - timedelta(seconds=1))
    assert run(scheduled()).status is Status.SUCCEEDED


def test_repeated_failures_pause_the_job_once_with_one_metric(db):
    # Given a job that pauses after 2 failed occurrences
    job = dataclasses.replace(PROBE, pause_after_failures=2)
    set_mode(db, "fail")
    # When one occurrence fails twice (a retry), then the next occurrence fails
    for as_of in (AS_OF, AS_OF, AS_OF + timedelta(hours=1)):
        with pytest.raises(JobFailed):
            run(scheduled(as_of, job=job))
    # Then the job paused itself, recording why, and one JobAutoPaused metric was emitted
    state = schedule_state.state(db, job)
    assert state.paused and state.changed_by == "runner" and "2 failed occurrences" in state.note
    assert metrics.metric_set["JobAutoPaused"]["Value"] == [1.0]
    [change] = schedule_state.changes(db, [job], datetime.now(UTC))[job.name]
    assert change.action == "auto-pause"
    # And the next occurrence is skipped as paused, without a second alarm
    assert run(scheduled(AS_OF + timedelta(hours=2), job=job)).status is Status.SKIPPED


def test_a_failed_occurrence_is_logged_raised_and_may_be_retried(db):
    set_mode(db, "fail")
    with pytest.raises(JobFailed, match="probe failed on purpose") as info:
        run(scheduled())
    assert info.value.sqlstate == "22012"
    set_mode(db, "ok")
    retry = run(scheduled())
    assert retry.status is Status.SUCCEEDED and effects(db) == 1
    failed, succeeded = log_rows(db)
    assert failed["status"] == "failed" and "probe failed on purpose" in failed["error_message"]
    assert failed["metadata"]["sqlstate"] == "22012" and failed["metadata"]["error_type"] == "JobFailed"
    assert succeeded["status"] == "succeeded"


def test_a_crashed_run_blocks_until_its_deadline_then_is_closed_as_abandoned(db):
    # Given a run that crashed (its 'running' row was never closed) and whose deadline is in the future
    db.execute(
        """INSERT INTO cron_job_logs (job_name, status, trigger, as_of, deadline_at)
                  VALUES ('probe-job', 'running', 'schedule', %s, clock_timestamp() + interval '1 hour')""",
        (AS_OF,),
    )
    # When the next occurrence arrives: it is an overlap, recorded and not raised
    assert run(scheduled(AS_OF + timedelta(hours=1))).status is Status.SKIPPED
    # Given the deadline passed
    db.execute(
        "UPDATE cron_job_logs SET deadline_at = clock_timestamp() - interval '1 second' WHERE status = 'running'"
    )
    # When the next delivery arrives, the stale row no longer blocks and is closed with a reason
    result = run(scheduled(AS_OF + timedelta(hours=1)))
    assert result.status is Status.SUCCEEDED
    crashed = log_rows(db)[0]
    assert crashed["status"] == "failed" and crashed["error_message"].startswith("abandoned:")
    assert crashed["metadata"]["abandoned"] is True
    # and the crashed occurrence may be retried
    assert run(scheduled(AS_OF)).status is Status.SUCCEEDED


def test_a_backend_killed_mid_run_leaves_a_failed_row_and_no_work(db, db_url):
    set_mode(db, "sleep:5")
    errors: list = []

    def deliver():
        try:
            run(scheduled())
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=deliver)
    thread.start()
    with psycopg.connect(db_url, autocommit=True) as killer:
        for _ in range(100):
            killed = killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'SELECT \"job_probe\"%' "
                "AND state = 'active' AND pid <> pg_backend_pid()"
            ).fetchall()
            if killed:
                break
            threading.Event().wait(0.05)
    thread.join()
    assert killed and len(errors) == 1
    assert effects(db) == 0
    [row] = log_rows(db)
    assert row["status"] == "failed"  # recorded over a fresh connection
    assert run(scheduled()).status is Status.SUCCEEDED  # and the retry works


def test_a_statement_timeout_fails_cleanly_and_rolls_back(db):
    # Given a job whose budget is 1 s and whose SQL takes 5 s
    set_mode(db, "sleep:5")
    quick = dataclasses.replace(PROBE, timeout_s=1)
    with pytest.raises(JobTimeout, match="cancelled after reaching its time budget") as info:
        run(scheduled(job=quick))
    assert info.value.sqlstate == "57014"
    [row] = log_rows(db)
    assert row["status"] == "failed" and row["metadata"]["error_type"] == "JobTimeout"
    assert effects(db) == 0


def test_a_bad_summary_is_a_failure(db):
    set_mode(db, "bad-summary")
    with pytest.raises(JobFailed, match="without integer effects"):
        run(scheduled())
    assert effects(db) == 0


def test_dry_run_rolls_back_and_reports_what_would_change(db):
    result = run(RunRequest(job=PROBE, as_of=AS_OF, trigger=Trigger.MANUAL, dry_run=True))
    assert result.status is Status.SUCCEEDED and result.summary == {"effects": 1} and result.dry_run
    assert effects(db) == 0
    [row] = log_rows(db)
    assert row["dry_run"] and row["status"] == "succeeded"
    # and it does not claim the occurrence
    assert run(scheduled()).status is Status.SUCCEEDED


def test_manual_run_of_a_succeeded_occurrence_needs_force(db):
    run(scheduled())
    again = run(RunRequest(job=PROBE, as_of=AS_OF, trigger=Trigger.MANUAL))
    assert again.status is Status.SKIPPED and "pass force to run it again" in again.reason
    forced = run(RunRequest(job=PROBE, as_of=AS_OF, trigger=Trigger.MANUAL, force=True))
    assert forced.status is Status.SUCCEEDED and effects(db) == 2
    assert log_rows(db)[-1]["forced"] is True


def test_manual_run_now_is_not_deduplicated(db):
    # Given two console runs with the payload {} (as_of = now, each time)
    for _ in range(2):
        assert run(parse_event(PROBE, {})).status is Status.SUCCEEDED
    assert effects(db) == 2


def test_a_stale_connection_is_replaced_after_a_server_restart(db, embedded_server):
    if embedded_server is None:
        pytest.skip("needs the embedded server to restart")
    assert run(scheduled()).status is Status.SUCCEEDED
    stale = get_connection()
    embedded_server.restart()
    # When the next invocation reuses the (now dead) connection
    result = run(scheduled(AS_OF + timedelta(hours=1)))
    assert result.status is Status.SUCCEEDED
    assert get_connection() is not stale


def test_an_unreachable_database_gives_a_clear_error_without_the_password(monkeypatch):
    password = "Pa55-recognizable-S3CRET"
    monkeypatch.setenv("DATABASE_URL", f"postgresql://jobs:{password}@127.0.0.1:1/app?connect_timeout=2")
    reset_connection()
    try:
        with pytest.raises(DatabaseUnavailable) as info:
            run(scheduled())
    finally:
        reset_connection()
    message = str(info.value)
    assert "could not be reached" in message and password not in message


def test_dependency_not_met_fails_with_a_message_naming_it(db):
    # Given a job depending on update-user-streaks, whose ledger is empty
    dependent = dataclasses.replace(PROBE, depends_on=("update-user-streaks",))
    with pytest.raises(DependencyNotMet) as info:
        run(scheduled(job=dependent))
    assert "needs update-user-streaks for 2026-11-27" in str(info.value)
    assert effects(db) == 0
    assert log_rows(db)[0]["metadata"]["error_type"] == "DependencyNotMet"


def test_a_dependency_not_met_waits_until_its_deadline_without_failing(db):
    # Given a dependent job whose dependency has not run, for an occurrence that just came
    dependent = dataclasses.replace(PROBE, depends_on=("update-user-streaks",), dependency_deadline=timedelta(hours=2))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # When its scheduled delivery arrives
    result = run(scheduled(now, job=dependent))
    # Then it is recorded skipped (waiting), nothing raised: no Lambda retry, no dead letter
    assert result.status is Status.SKIPPED and result.reason.startswith("waiting for a dependency until")
    [row] = log_rows(db)
    assert row["metadata"]["deferred"] == "dependency" and effects(db) == 0
    # And a manual run, or a delivery past the deadline, fails as before
    with pytest.raises(DependencyNotMet):
        run(RunRequest(job=dependent, as_of=now, trigger=Trigger.MANUAL))
    with pytest.raises(DependencyNotMet):
        run(scheduled(now - timedelta(hours=3), job=dependent))


# --------------------------------------------------------------------------- exactly once, the last line of defence


def wait_for_probe_work(db_url: str) -> None:
    """Until the probe's SQL is running (the run has claimed its slot and is doing its work)."""
    with psycopg.connect(db_url, autocommit=True) as watcher:
        for _ in range(200):
            busy = watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'SELECT \"job_probe\"%' AND state = 'active'"
            ).fetchone()
            if busy:
                return
            threading.Event().wait(0.02)
    raise AssertionError("the probe's work never started")


def test_the_success_index_is_unique_per_occurrence_with_its_predicate(db):
    # The index that makes a duplicate past the claim roll back instead of doing the work twice
    row = db.execute(
        """SELECT i.indisunique AS is_unique,
                  array(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k)
                      AS keys,
                  pg_get_expr(i.indpred, i.indrelid) AS predicate
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE c.relname = 'cron_job_logs_one_success_per_occurrence'"""
    ).fetchone()
    assert row is not None, "the index cron_job_logs_one_success_per_occurrence is missing"
    assert row["is_unique"] is True
    assert row["keys"] == ["job_name", "as_of"]
    assert row["predicate"] == (
        "((status = 'succeeded'::text) AND (NOT forced) AND (NOT dry_run) AND (trigger <> 'sql'::text))"
    )


def test_the_running_slot_is_a_unique_index_per_job_while_running(db):
    # The slot that keeps two runs of one job apart, whatever the job name's spelling
    row = db.execute(
        """SELECT i.indisunique AS is_unique, pg_get_indexdef(i.indexrelid, 1, true) AS key,
                  pg_get_expr(i.indpred, i.indrelid) AS predicate
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE c.relname = 'cron_job_logs_one_running_per_job'"""
    ).fetchone()
    assert row is not None, "the index cron_job_logs_one_running_per_job is missing"
    assert (row["is_unique"], row["key"], row["predicate"]) == (
        True,
        "replace(job_name, '_'::text, '-'::text)",
        "(status = 'running'::text)",
    )


def test_a_duplicate_forced_past_the_claim_rolls_its_work_back_and_is_logged_as_a_skip(db, db_url):
    # Given a scheduled run that has claimed its occurrence and is doing its work
    set_mode(db, "sleep:1")
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(run(scheduled(), request_id="late")))
    thread.start()
    wait_for_probe_work(db_url)
    # When another delivery of the same occurrence, past the claim, commits its work and its success first
    with psycopg.connect(db_url, autocommit=True) as other, other.transaction():
        other.execute("INSERT INTO probe_effects (as_of) VALUES (%s)", (AS_OF,))
        other.execute(
            """INSERT INTO cron_job_logs (job_name, status, trigger, as_of, request_id, finished_at)
               VALUES ('probe-job', 'succeeded', 'schedule', %s, 'first', clock_timestamp())""",
            (AS_OF,),
        )
    thread.join()
    # Then the slower run's work was rolled back (the occurrence's work was done once) ...
    assert effects(db) == 1
    # ... and it says so: a skip, not a success and not a failure
    [result] = outcome
    assert result.status is Status.SKIPPED
    assert result.reason.startswith("duplicate: this occurrence succeeded in another run while this one worked")
    rows = {r["request_id"]: r for r in log_rows(db)}
    assert rows["late"]["status"] == "skipped" and rows["late"]["error_message"] == result.reason
    assert rows["first"]["status"] == "succeeded"


def test_the_work_and_its_success_record_commit_together(db, db_url):
    # Given a run (budget 2 s) whose work is done but whose success record cannot be written:
    # another session holds its log row, so the final UPDATE waits past the budget
    set_mode(db, "sleep:0.8")
    quick = dataclasses.replace(PROBE, timeout_s=2)
    errors: list = []

    def deliver() -> None:
        try:
            run(scheduled(job=quick), request_id="held")
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=deliver)
    thread.start()
    wait_for_probe_work(db_url)
    holder = psycopg.connect(db_url)
    try:
        held = holder.execute(
            "SELECT id FROM cron_job_logs WHERE request_id = 'held' AND status = 'running' FOR UPDATE"
        ).fetchone()
        assert held is not None
        # (the runner records its failure once the lock is gone)
        threading.Timer(4.0, holder.close).start()
        thread.join()
    finally:
        holder.close()
    # Then the run failed on its budget, and none of its work remains
    assert len(errors) == 1 and isinstance(errors[0], JobTimeout), errors
    assert effects(db) == 0
    [row] = log_rows(db)
    assert row["status"] == "failed" and row["metadata"]["error_type"] == "JobTimeout"
    # and the retry does the work, once
    assert run(scheduled()).status is Status.SUCCEEDED and effects(db) == 1
