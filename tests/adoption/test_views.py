"""The guide's v_cron_job_stats reads as its example does (issue 12, item 10)."""

from __future__ import annotations


def test_total_runs_is_successful_plus_failed_and_skipped_and_running_have_their_own_columns(conn):
    # Given one job with 3 successes, 1 failure, 2 skipped deliveries and 1 run in progress
    conn.execute("""
        INSERT INTO cron_job_logs (job_name, status, started_at, finished_at, execution_time_ms, trigger, as_of)
        VALUES ('j', 'succeeded', '2026-01-01', '2026-01-01', 100, 'schedule', '2026-01-01'),
               ('j', 'succeeded', '2026-01-02', '2026-01-02', 200, 'schedule', '2026-01-02'),
               ('j', 'succeeded', '2026-01-03', '2026-01-03', 300, 'schedule', '2026-01-03'),
               ('j', 'failed',    '2026-01-04', '2026-01-04', 400, 'schedule', '2026-01-04'),
               ('j', 'skipped',   '2026-01-04', '2026-01-04', 0,   'schedule', '2026-01-04'),
               ('j', 'skipped',   '2026-01-05', '2026-01-05', 0,   'manual',   '2026-01-05');
        INSERT INTO cron_job_logs (job_name, status, started_at, trigger, as_of, deadline_at)
        VALUES ('j', 'running', '2026-01-06', 'schedule', '2026-01-06', '2026-01-06 00:10');
    """)
    row = conn.execute("SELECT * FROM v_cron_job_stats").fetchone()
    # Then the total counts finished runs only, and the average is over them
    assert (row["total_runs"], row["successful_runs"], row["failed_runs"]) == (4, 3, 1)
    assert (row["skipped_runs"], row["running_runs"]) == (2, 1)
    assert float(row["avg_execution_time_ms"]) == 250.0
    assert row["last_run_at"].isoformat().startswith("2026-01-06")
