-- send-daily-reminders (0 18 * * *). Today T is p_as_of's UTC date.
-- Users with a streak above zero, in good standing (account_status 'active'), with
-- reminders enabled and not yet active today (no user_daily_activity row for T whose
-- first_active_at <= p_as_of) get one in-app 'streak_reminder' notification keyed by T
-- ('YYYY-MM-DD'), payload {"streak": n}. The unique constraint notifications_once makes
-- it at most one per user per day, however often or concurrently the job runs.
CREATE OR REPLACE FUNCTION job_send_daily_reminders(p_as_of timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_today    date;
    v_created  bigint;
BEGIN
    IF p_as_of IS NULL THEN
        RAISE EXCEPTION 'send-daily-reminders: p_as_of must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_today := (p_as_of AT TIME ZONE 'UTC')::date;

    WITH created AS (
        INSERT INTO notifications (user_id, kind, dedup_key, payload, created_at)
        SELECT g.user_id, 'streak_reminder', to_char(v_today, 'YYYY-MM-DD'),
               jsonb_build_object('streak', g.current_streak), p_as_of
          FROM user_gamification g
          JOIN users u ON u.id = g.user_id
         WHERE g.current_streak > 0
           AND u.account_status = 'active'
           AND u.reminders_enabled
           AND NOT EXISTS (SELECT 1 FROM user_daily_activity a
                            WHERE a.user_id = g.user_id AND a.activity_date = v_today
                              AND a.first_active_at <= p_as_of)
        ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO v_created FROM created;

    RETURN jsonb_build_object('notifications_created', v_created);
END;
$$;

CREATE OR REPLACE FUNCTION send_daily_reminders(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('send-daily-reminders', 'job_send_daily_reminders($1)', p_as_of)
$$;
