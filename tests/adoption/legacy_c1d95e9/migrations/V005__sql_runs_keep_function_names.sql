-- A job run by hand in SQL (the guide's "Testing Jobs Manually": SELECT reset_daily_challenges();)
-- is logged under the function's name, so the guide's "Check the logs" query
-- (WHERE job_name = 'reset_daily_challenges') finds it. Scheduled and console runs keep the
-- job's name (reset-daily-challenges). The one-running-run-per-job slot is keyed on the
-- spelling-independent name, so a hand run and a scheduled run still never overlap.
DROP INDEX cron_job_logs_one_running_per_job;
CREATE UNIQUE INDEX cron_job_logs_one_running_per_job
    ON cron_job_logs ((replace(job_name, '_', '-'))) WHERE status = 'running';
