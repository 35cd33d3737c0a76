-- database-maintenance (0 3 1 * *), mode MAINTENANCE.
-- This function is the transactional part only: it deletes finished cron_job_logs rows
-- started more than p_retention_days days before p_as_of ('running' rows are never
-- deleted). VACUUM cannot run inside a function or a transaction block, so the runner
-- (shared/jobs.py) runs VACUUM (ANALYZE) on the job tables in autocommit first and fills
-- in tables_vacuumed; called alone (or through the guide-named wrapper) it reports 0.
CREATE OR REPLACE FUNCTION job_database_maintenance(p_as_of timestamptz, p_retention_days integer DEFAULT 90)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_deleted  bigint;
BEGIN
    IF p_as_of IS NULL OR p_retention_days IS NULL OR p_retention_days < 1 THEN
        RAISE EXCEPTION 'database-maintenance: p_as_of must be given and p_retention_days must be >= 1 (got %)',
            p_retention_days USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH pruned AS (
        DELETE FROM cron_job_logs
         WHERE started_at < p_as_of - make_interval(days => p_retention_days)
           AND status <> 'running'
        RETURNING 1
    )
    SELECT count(*) INTO v_deleted FROM pruned;

    RETURN jsonb_build_object('tables_vacuumed', 0, 'logs_deleted', v_deleted);
END;
$$;

-- The guide's SELECT database_maintenance(): prunes the logs only (tables_vacuumed 0);
-- for the VACUUM run the job (Lambda console, CLI) or VACUUM (ANALYZE) by hand.
CREATE OR REPLACE FUNCTION database_maintenance(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('database-maintenance', 'job_database_maintenance($1)', p_as_of)
$$;
