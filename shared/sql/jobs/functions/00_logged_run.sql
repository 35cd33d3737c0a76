-- Running a job by hand in SQL, as the guide does (SELECT reset_daily_challenges();).
-- Each guide-named function calls logged_run(<job name>, p_as_of), which records the run in
-- cron_job_logs with trigger 'sql' under the function's name (job_name =
-- 'reset_daily_challenges', so the guide's "Check the logs" query finds it) and calls the
-- job's work function job_<name>(p_as_of), the same function the Lambda runner calls. Like
-- the runner it takes the job's 'running' slot first (so it never overlaps a scheduled run)
-- and, on error, keeps a 'failed' row with the SQLSTATE (the guide's EXCEPTION-block
-- practice) and returns the error as JSON.
--
-- The work function is picked from the fixed list below by the job's name: nothing a caller
-- passes is ever run as SQL (tests/reliability/test_public_api.py checks the list against
-- shared/registry.py). An unknown name is refused before anything is logged.
--
-- A cancelled run (statement_timeout, lock_timeout, pg_cancel_backend, Ctrl-C in psql) is
-- caught too: plpgsql's WHEN OTHERS does not catch query_canceled, so it is named. The work
-- is rolled back, the row says 'failed' with SQLSTATE 57014 and the statement ends normally,
-- so the row is kept. Only a session that dies (pg_terminate_backend, a lost connection)
-- takes its row with it, and then it also took all its work: nothing happened.

-- The signature that took the work as SQL text (until this change) goes.
DROP FUNCTION IF EXISTS logged_run(text, text, timestamptz);

CREATE OR REPLACE FUNCTION logged_run(p_job_name text, p_as_of timestamptz)
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
    IF v_name IS NULL OR v_name NOT IN (
        'reset_daily_challenges', 'update_user_streaks', 'calculate_daily_metrics', 'send_daily_reminders',
        'cleanup_expired_stories', 'cleanup_expired_sessions', 'process_moderation_queue',
        'send_weekly_reports', 'cleanup_inactive_accounts', 'update_leaderboards', 'database_maintenance')
    THEN
        RAISE EXCEPTION 'logged_run: no job named %', coalesce(quote_literal(p_job_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    BEGIN
        INSERT INTO cron_job_logs (job_name, status, started_at, trigger, as_of, deadline_at)
        VALUES (v_name, 'running', v_started, 'sql', p_as_of, v_started + interval '15 minutes')
        RETURNING id INTO v_id;
    EXCEPTION WHEN unique_violation THEN
        INSERT INTO cron_job_logs (job_name, status, started_at, finished_at, execution_time_ms, trigger, as_of,
                                   error_message)
        VALUES (v_name, 'skipped', v_started, clock_timestamp(), 0, 'sql', p_as_of,
                'overlap: another run of ' || p_job_name || ' is in progress');
        RETURN jsonb_build_object('status', 'skipped', 'reason', 'another run is in progress');
    END;

    BEGIN
        CASE v_name
            WHEN 'reset_daily_challenges'    THEN v_summary := job_reset_daily_challenges(p_as_of);
            WHEN 'update_user_streaks'       THEN v_summary := job_update_user_streaks(p_as_of);
            WHEN 'calculate_daily_metrics'   THEN v_summary := job_calculate_daily_metrics(p_as_of);
            WHEN 'send_daily_reminders'      THEN v_summary := job_send_daily_reminders(p_as_of);
            WHEN 'cleanup_expired_stories'   THEN v_summary := job_cleanup_expired_stories(p_as_of);
            WHEN 'cleanup_expired_sessions'  THEN v_summary := job_cleanup_expired_sessions(p_as_of);
            WHEN 'process_moderation_queue'  THEN v_summary := job_process_moderation_queue(p_as_of);
            WHEN 'send_weekly_reports'       THEN v_summary := job_send_weekly_reports(p_as_of);
            WHEN 'cleanup_inactive_accounts' THEN v_summary := job_cleanup_inactive_accounts(p_as_of);
            WHEN 'update_leaderboards'       THEN v_summary := job_update_leaderboards(p_as_of);
            WHEN 'database_maintenance'      THEN v_summary := job_database_maintenance(p_as_of);
        END CASE;
        UPDATE cron_job_logs
           SET status = 'succeeded', finished_at = clock_timestamp(),
               execution_time_ms = round((extract(epoch FROM clock_timestamp() - v_started) * 1000)::numeric, 3),
               metadata = metadata || jsonb_build_object('summary', v_summary)
         WHERE id = v_id;
        RETURN v_summary;
    EXCEPTION WHEN query_canceled OR OTHERS THEN
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
