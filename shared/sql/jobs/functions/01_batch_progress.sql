-- The progress row of a batched job's occurrence keyed by its as_of (send-daily-reminders,
-- send-weekly-reports; V045): created when missing, then locked FOR UPDATE until the caller's
-- transaction ends, so a concurrent run of the same occurrence waits for this batch and then
-- goes on after it. The occurrence is as_of in UTC, 'YYYY-MM-DDTHH:MI:SS.ffffffZ' (the key the
-- job pages' rollback deletes). update-user-streaks keys its progress by the day it processes
-- and keeps its own. Only the jobs' functions call it (the lockdown revokes it from PUBLIC).
CREATE OR REPLACE FUNCTION batch_progress_lock(p_job text, p_as_of timestamptz)
RETURNS job_batch_progress
LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
DECLARE
    v_occ  text := to_char(p_as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    v_row  job_batch_progress%ROWTYPE;
BEGIN
    INSERT INTO job_batch_progress (job_name, occurrence) VALUES (p_job, v_occ)
    ON CONFLICT (job_name, occurrence) DO NOTHING;
    SELECT * INTO v_row FROM job_batch_progress
     WHERE job_name = p_job AND occurrence = v_occ
       FOR UPDATE;
    RETURN v_row;
END;
$$;
