-- pg_cron's jobs in this database, as the schema owner sees them (shared/cutover.py).
--
-- cron.job shows each user only the jobs they scheduled (row-level security). The runner
-- and the watchdog, logged in as a member of scheduled_jobs_runner, must still see the
-- guide's jobs, which the owner scheduled, to know whether pg_cron runs an occurrence:
-- so this runs as its owner (SECURITY DEFINER, pinned search_path) and only the owner and
-- the jobs' role may call it. Empty where pg_cron is not installed in this database.
CREATE OR REPLACE FUNCTION pg_cron_jobs()
RETURNS TABLE (jobid bigint, jobname text, schedule text, command text, database text, username text, active boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET TimeZone = 'UTC' AS $$
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RETURN;
    END IF;
    -- dynamic: the table does not exist where pg_cron is absent
    RETURN QUERY EXECUTE
        'SELECT j.jobid, j.jobname::text, j.schedule, j.command, j.database, j.username::text, j.active
           FROM cron.job j
          WHERE j.database = current_database()
          ORDER BY j.jobid';
END;
$$;

REVOKE ALL ON FUNCTION pg_cron_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_cron_jobs() TO scheduled_jobs_runner;
