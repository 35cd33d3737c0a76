-- cleanup-expired-sessions (*/15 * * * *).
-- Typing indicators whose expires_at is strictly before p_as_of are deleted (at exactly
-- expires_at the indicator still stands). Online users whose last heartbeat is more than
-- 15 minutes before p_as_of are marked offline at p_as_of (exactly 15 minutes: still online).
CREATE OR REPLACE FUNCTION job_cleanup_expired_sessions(p_as_of timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_deleted  bigint;
    v_offline  bigint;
BEGIN
    IF p_as_of IS NULL THEN
        RAISE EXCEPTION 'cleanup-expired-sessions: p_as_of must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH expired AS (
        DELETE FROM typing_indicators WHERE expires_at < p_as_of RETURNING 1
    ), offline AS (
        UPDATE user_presence
           SET is_online = false, went_offline_at = p_as_of
         WHERE is_online
           AND last_heartbeat_at < p_as_of - interval '15 minutes'
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM expired), (SELECT count(*) FROM offline) INTO v_deleted, v_offline;

    RETURN jsonb_build_object('typing_indicators_deleted', v_deleted, 'users_marked_offline', v_offline);
END;
$$;

CREATE OR REPLACE FUNCTION cleanup_expired_sessions(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('cleanup-expired-sessions', 'job_cleanup_expired_sessions($1)', p_as_of)
$$;
