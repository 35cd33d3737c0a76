-- send-daily-reminders (0 18 * * *). Today T is p_as_of's UTC date.
-- Users with a streak above zero, in good standing (account_status 'active'), with
-- reminders enabled and not yet active today (no user_daily_activity row for T whose
-- first_active_at <= p_as_of) get one in-app 'streak_reminder' notification keyed by T
-- ('YYYY-MM-DD'), payload {"streak": n}. The unique constraint notifications_once makes
-- it at most one per user per day, however often or concurrently the job runs. A run for a
-- day that update-user-streaks has already processed (a backfill after midnight: the streaks
-- at risk that day are already kept or broken) reminds nobody.
--
-- Bounded batches (registry: mode BATCHED, resumable, batch_size): with p_batch_size a call
-- does ONE batch, the next p_batch_size users (by id) after the occurrence's cursor in
-- job_batch_progress (V045, occurrence = as_of), and commits the cursor and the
-- occurrence's count so far with its notifications. The progress row is locked first, so a
-- concurrent run of the same occurrence waits and then goes on after this batch. A finished
-- occurrence (done) delivered again does nothing. Without p_batch_size (the guide's SELECT
-- send_daily_reminders();) one call does the rest of the occurrence. The result: the
-- occurrence's notifications_created (with the batches of an earlier, cut-off delivery),
-- and work_remaining: 1 while users are left (absent when none are).
DROP FUNCTION IF EXISTS job_send_daily_reminders(timestamptz);

CREATE OR REPLACE FUNCTION job_send_daily_reminders(p_as_of timestamptz, p_batch_size integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_today     date;
    v_key       text;
    v_progress  job_batch_progress%ROWTYPE;
    v_lo        users.id%TYPE;  -- the cursor: the last user done (NULL: none yet)
    v_from      users.id%TYPE;  -- the batch: its first user (NULL: none left) ...
    v_to        users.id%TYPE;  -- ... through this one
    v_done      boolean;        -- no user is left after this batch
    v_created   bigint;
BEGIN
    IF p_as_of IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'send-daily-reminders: p_as_of must be given and p_batch_size must be >= 1 (got %)',
            p_batch_size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_today := (p_as_of AT TIME ZONE 'UTC')::date;
    v_key := to_char(v_today, 'YYYY-MM-DD');

    v_progress := batch_progress_lock('send-daily-reminders', p_as_of);  -- 01_batch_progress.sql
    IF v_progress.done THEN
        RETURN jsonb_build_object('notifications_created', 0);
    END IF;

    -- the batch: the next users after the cursor, as plain bounds (01_users_batch.sql)
    v_lo := v_progress.cursor_user_id;
    SELECT b.first_id, b.last_id, b.last_batch INTO v_from, v_to, v_done FROM users_batch(v_lo, p_batch_size) b;

    WITH created AS (
        INSERT INTO notifications (user_id, kind, dedup_key, payload, created_at)
        SELECT g.user_id, 'streak_reminder', v_key, jsonb_build_object('streak', g.current_streak), p_as_of
          FROM user_gamification g
          JOIN users u ON u.id = g.user_id
         WHERE g.current_streak > 0
           -- the range on both sides of the join: the planner does not carry it across, and
           -- without it each batch joined every user (a pass over users per batch)
           AND g.user_id BETWEEN v_from AND v_to
           AND u.id BETWEEN v_from AND v_to
           AND u.account_status = 'active'
           AND u.reminders_enabled
           -- a backfill of a day update-user-streaks already processed (the day is over, its
           -- streaks kept or broken) reminds nobody: a reminder for a past day is noise
           AND NOT EXISTS (SELECT 1 FROM streak_days d WHERE d.day >= v_today)
           AND NOT EXISTS (SELECT 1 FROM user_daily_activity a
                            WHERE a.user_id = g.user_id AND a.activity_date = v_today
                              AND a.first_active_at <= p_as_of)
        ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
        RETURNING 1
    )
    SELECT count(*) + coalesce((v_progress.counts ->> 'notifications_created')::bigint, 0)
      INTO v_created FROM created;

    UPDATE job_batch_progress
       SET cursor_user_id = coalesce(v_to, v_lo), done = v_done, batches = batches + 1,
           counts = jsonb_build_object('notifications_created', v_created), updated_at = clock_timestamp()
     WHERE job_name = v_progress.job_name AND occurrence = v_progress.occurrence;

    RETURN jsonb_build_object('notifications_created', v_created)
        || CASE WHEN v_done THEN '{}' ELSE '{"work_remaining": 1}' END::jsonb;
END;
$$;

CREATE OR REPLACE FUNCTION send_daily_reminders(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('send-daily-reminders', p_as_of)
$$;
