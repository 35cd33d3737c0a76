"""The guide's hand calls (SELECT update_user_streaks();): every run leaves a truthful row,
however it ends, and nothing a caller passes is ever run as SQL."""

from __future__ import annotations

import re
import threading

import psycopg
import pytest

from shared import registry
from shared.migrations import FUNCTIONS_DIR
from tests.factories import make_user, record_activity, utc


def test_a_hand_run_cancelled_by_statement_timeout_leaves_a_failed_row(conn, db_url):
    # Given a user with yesterday's activity, and another session holding a lock the streak job needs
    uid = make_user(conn)
    record_activity(conn, uid, utc(2026, 11, 30, 12), xp=5)
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE streak_days IN ACCESS EXCLUSIVE MODE")
        # When the guide's hand call runs under the guide's best practice of a statement timeout
        conn.execute("SET statement_timeout = '300ms'")
        result = conn.execute("SELECT update_user_streaks('2026-12-01 00:05+00') AS r").fetchone()["r"]
        conn.execute("RESET statement_timeout")
        blocker.rollback()
    # Then the call reports the cancellation instead of losing it
    assert result["status"] == "failed" and result["sqlstate"] == "57014"
    # and its row is in the log, saying what happened
    rows = conn.execute("SELECT status, trigger, error_message, metadata FROM cron_job_logs").fetchall()
    assert len(rows) == 1
    assert rows[0]["status"] == "failed" and rows[0]["trigger"] == "sql"
    assert "statement timeout" in rows[0]["error_message"] and rows[0]["metadata"]["sqlstate"] == "57014"
    # and the work it had begun was rolled back: a later run does the day in full
    assert conn.execute("SELECT count(*) AS n FROM streak_days").fetchone()["n"] == 0
    again = conn.execute("SELECT update_user_streaks('2026-12-01 00:05+00') AS r").fetchone()["r"]
    assert again["streaks_incremented"] == 1


def test_a_hand_run_cancelled_by_the_operator_leaves_a_failed_row(conn, db_url):
    # Given a hand run waiting on a lock in another session
    pid = conn.execute("SELECT pg_backend_pid() AS p").fetchone()["p"]
    with psycopg.connect(db_url) as blocker, psycopg.connect(db_url, autocommit=True) as operator:
        blocker.execute("LOCK TABLE daily_challenges IN ACCESS EXCLUSIVE MODE")
        out: dict = {}
        runner = threading.Thread(
            target=lambda: out.update(conn.execute("SELECT reset_daily_challenges() AS r").fetchone())
        )
        runner.start()
        # When the operator cancels it (what Ctrl-C in psql sends)
        for _ in range(200):
            waiting = operator.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            if waiting and waiting[0] == "Lock":
                break
            threading.Event().wait(0.02)
        operator.execute("SELECT pg_cancel_backend(%s)", (pid,))
        runner.join(10)
        blocker.rollback()
    # Then the run is logged as failed with the cancellation's SQLSTATE
    assert out["r"]["sqlstate"] == "57014"
    row = conn.execute("SELECT job_name, status, metadata FROM cron_job_logs").fetchone()
    assert (row["job_name"], row["status"]) == ("reset_daily_challenges", "failed")
    assert row["metadata"]["sqlstate"] == "57014"


@pytest.mark.parametrize(
    "name",
    ["x", "(select count(*) from users)::text::jsonb", "job_update_user_streaks($1)", "pg_sleep(10)", None],
)
def test_logged_run_refuses_anything_but_a_job_name_and_logs_nothing(conn, name):
    # When logged_run is called with something that is not one of the jobs' names
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no job named"):
        conn.execute("SELECT logged_run(%s, now())", (name,))
    # Then nothing ran and nothing was logged
    assert conn.execute("SELECT count(*) AS n FROM cron_job_logs").fetchone()["n"] == 0


def test_logged_run_no_longer_takes_sql_text(conn):
    signatures = conn.execute(
        "SELECT oid::regprocedure::text AS s FROM pg_proc WHERE proname = 'logged_run'"
    ).fetchall()
    assert [r["s"] for r in signatures] == ["logged_run(text,timestamp with time zone)"]


def test_logged_runs_fixed_list_is_exactly_the_registry():
    sql = (FUNCTIONS_DIR / "00_logged_run.sql").read_text()
    allowed = set(re.findall(r"'([a-z_]+)'", sql.split("NOT IN (", 1)[1].split(")", 1)[0]))
    dispatched = dict(re.findall(r"WHEN '([a-z_]+)'\s+THEN v_summary := (job_[a-z_]+)\(p_as_of\)", sql))
    expected = {job.sql_function: job.work_function for job in registry.JOBS}
    assert allowed == set(expected)
    assert dispatched == expected


@pytest.mark.parametrize("job", registry.JOBS, ids=lambda j: j.name)
def test_every_guide_named_function_logs_under_its_own_name(conn, job):
    conn.execute(f"SELECT {job.sql_function}('2026-12-01 03:00+00')")
    row = conn.execute("SELECT job_name, trigger, status, error_message FROM cron_job_logs").fetchone()
    assert (row["job_name"], row["trigger"]) == (job.sql_function, "sql")
    assert "no job named" not in (row["error_message"] or "")
