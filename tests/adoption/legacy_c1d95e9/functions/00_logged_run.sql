-- Running a job by hand in SQL, as the guide does (SELECT reset_daily_challenges();).
-- Each guide-named function calls logged_run(), which records the run in cron_job_logs
-- with trigger 'sql' under the function's name (job_name = 'reset_daily_challenges', so the
-- guide's "Check the logs" query finds it) and calls the job's work function job_<name>(p_as_of, ...), the same
-- function the Lambda runner calls. Like the runner it takes the job's 'running' slot
-- first (so it never overlaps a scheduled run) and, on error, keeps a 'failed' row with
-- the SQLSTATE (the guide's EXCEPTION-block practice) and returns the error as JSON.
CREATE OR REPLACE FUNCTION logged_run(p_job_name text, p_work_call text, p_as_of timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_name     text := replace(p_job_name, '-', '_');  -- the guide's spelling for hand runs
    v_id       bigint;
    v_started  timestamptz := clock_timestamp();
    v_summary  jsonb;
    v_state    text;
    v_message  text;
BEGIN
    BEGIN
        INSERT INTO cron_job_logs (job_name, status, started_at, trigger, as_of, deadline_at, metadata)
        VALUES (v_name, 'running', v_started, 'sql', p_as_of, v_started + interval '15 minutes',
                jsonb_build_object('called_as', p_work_call))
        RETURNING id INTO v_id;
    EXCEPTION WHEN unique_violation THEN
        INSERT INTO cron_job_logs (job_name, status, started_at, finished_at, execution_time_ms, trigger, as_of,
                                   error_message)
        VALUES (v_name, 'skipped', v_started, clock_timestamp(), 0, 'sql', p_as_of,
                'overlap: another run of ' || p_job_name || ' is in progress');
        RETURN jsonb_build_object('status', 'skipped', 'reason', 'another run is in progress');
    END;

    BEGIN
        EXECUTE 'SELECT ' || p_work_call INTO v_summary USING p_as_of;
        UPDATE cron_job_logs
           SET status = 'succeeded', finished_at = clock_timestamp(),
               execution_time_ms = round((extract(epoch FROM clock_timestamp() - v_started) * 1000)::numeric, 3),
               metadata = metadata || jsonb_build_object('summary', v_summary)
         WHERE id = v_id;
        RETURN v_summary;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
        UPDATE cron_job_logs
           SET status = 'failed', finished_at = clock_timestamp(),
               execution_time_ms = round((extract(epoch FROM clock_timestamp() - v_started) * 1000)::numeric, 3),
               error_message = v_message,
               metadata = metadata || jsonb_build_object('sqlstate', v_state)
         WHERE id = v_id;
        RETURN jsonb_build_object('status', 'failed', 'error', v_message, 'sqlstate', v_state);
    END;
END;
$$;
