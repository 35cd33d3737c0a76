-- send-weekly-reports (0 0 * * 0). The week reported is the last complete week at p_as_of:
-- the seven whole UTC days [E-7, E-1], E being the latest Sunday 00:00 UTC at or before
-- p_as_of (on the Sunday 00:00 schedule E is as_of's own date, so consecutive Sundays report
-- every day exactly once; a hand run mid-week reports the last complete week again, a no-op
-- once it was sent, and never takes or splits the coming Sunday's report).
-- The week is labelled by the days it covers: '2026-11-22/2026-11-28' (Sunday/Saturday,
-- ISO 8601 dates), the notification's dedup_key and payload.week, at most one per user per
-- label. (Before, the label was the ISO week of the Saturday, '2026-W48', which names a
-- Monday-to-Sunday week the window does not match; a report already sent under that label
-- for the same days counts as sent. The weekly leaderboard's week is the ISO week,
-- Monday..Sunday: it starts the day after this window's Sunday.)
-- Recipients: users with a user_daily_activity row in the window, in good standing
-- ('active'), not opted out. Payload: week, period_start, period_end, messages_sent (sent
-- in the window, not deleted), conversation_partners (distinct users they sent to or
-- received from in the window), challenges_completed (in the window), xp_gained (sum of
-- xp_earned over the window's days), current_streak: the streak as it stood at the week's
-- end (after update-user-streaks processed the Saturday E-1), whichever Sunday-midnight job
-- runs first and however late the run: if the streak ledger has processed E-1, the row's
-- value then (user_gamification.week_end_streak, written by update-user-streaks when it
-- processes a Saturday; a row it did not change that day held 0, or its unchanged value);
-- if not yet, what processing the days up to E-1 will give (one more per day active, or
-- the days active since the last day without activity).
--
-- Bounded batches (registry: mode BATCHED, resumable, batch_size), as send-daily-reminders:
-- with p_batch_size a call does ONE batch, the next p_batch_size users (by id) after the
-- occurrence's cursor in job_batch_progress (V045, occurrence = as_of), and commits the
-- cursor and the occurrence's counts so far with its notifications. The progress row is
-- locked first, so a concurrent run of the same occurrence waits, then goes on after this
-- batch. A finished occurrence delivered again does nothing. Without p_batch_size (the
-- guide's SELECT send_weekly_reports();) one call does the rest of the occurrence. The
-- result: the occurrence's notifications_created and active_users (with the batches of an
-- earlier, cut-off delivery), and work_remaining: 1 while users are left.
-- A batch reads only its users' week: each table by its UTC day and user id (V046's indexes
-- and user_daily_activity_date_idx), `day = ANY (the seven days) AND user BETWEEN bounds`,
-- seven index seeks each. Each user's messages_sent and distinct partners come from their
-- messages seen from both ends: the ones they sent and the ones they received.
DROP FUNCTION IF EXISTS job_send_weekly_reports(timestamptz);

CREATE OR REPLACE FUNCTION job_send_weekly_reports(p_as_of timestamptz, p_batch_size integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_first     date;
    v_last      date;
    v_days      date[];
    v_week      text;
    v_old_key   text;
    v_ledger    date;
    v_since     date;
    v_progress  job_batch_progress%ROWTYPE;
    v_lo        users.id%TYPE;  -- the cursor: the last user done (NULL: none yet)
    v_from      users.id%TYPE;  -- the batch: its first user (NULL: none left) ...
    v_to        users.id%TYPE;  -- ... through this one
    v_done      boolean;        -- no user is left after this batch
    v_active    bigint;
    v_created   bigint;
BEGIN
    IF p_as_of IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'send-weekly-reports: p_as_of must be given and p_batch_size must be >= 1 (got %)',
            p_batch_size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the latest Sunday at or before as_of's UTC date (extract(dow): Sunday = 0)
    v_last  := (p_as_of AT TIME ZONE 'UTC')::date;
    v_last  := v_last - extract(dow FROM v_last)::int - 1;
    v_first := v_last - 6;
    v_days  := ARRAY(SELECT v_first + k FROM generate_series(0, 6) AS k);
    v_week  := to_char(v_first, 'YYYY-MM-DD') || '/' || to_char(v_last, 'YYYY-MM-DD');
    v_old_key := to_char(v_last, 'IYYY-"W"IW');

    v_progress := batch_progress_lock('send-weekly-reports', p_as_of);  -- 01_batch_progress.sql
    IF v_progress.done THEN  -- nothing sent now; the week's active users as counted then
        RETURN jsonb_build_object('notifications_created', 0,
                                  'active_users', coalesce((v_progress.counts ->> 'active_users')::bigint, 0));
    END IF;

    -- the streak ledger's last processed day; the days after it through v_last are simulated
    SELECT max(day) INTO v_ledger FROM streak_days;
    v_since := least(coalesce(v_ledger, v_last - 1), v_last);

    -- transaction-local: a batch's pairs hash in memory (~12 MB at 50,000 users; the default
    -- 4 MB spilled them to disk)
    PERFORM set_config('work_mem', '64MB', true);

    -- the batch: the next users after the cursor, as plain bounds (01_users_batch.sql)
    v_lo := v_progress.cursor_user_id;
    SELECT b.first_id, b.last_id, b.last_batch INTO v_from, v_to, v_done FROM users_batch(v_lo, p_batch_size) b;

    WITH activity AS (
        SELECT user_id, sum(xp_earned) AS xp_gained
          FROM user_daily_activity
         WHERE activity_date = ANY (v_days) AND user_id BETWEEN v_from AND v_to
         GROUP BY user_id
    ), recipients AS (
        SELECT w.user_id, w.xp_gained
          FROM activity w
          JOIN users u ON u.id = w.user_id
         WHERE u.id BETWEEN v_from AND v_to
           AND u.account_status = 'active' AND NOT u.weekly_report_opt_out
    ), ends AS (
        -- each message from both ends: the sender sent it, both have the partner
        SELECT m.sender_id AS user_id, m.recipient_id AS partner_id, 1 AS sent
          FROM messages m
         WHERE (m.created_at AT TIME ZONE 'UTC')::date = ANY (v_days) AND m.is_deleted = false
           AND m.sender_id BETWEEN v_from AND v_to
        UNION ALL
        SELECT m.recipient_id, m.sender_id, 0
          FROM messages m
         WHERE (m.created_at AT TIME ZONE 'UTC')::date = ANY (v_days) AND m.is_deleted = false
           AND m.recipient_id BETWEEN v_from AND v_to
    ), pairs AS (
        SELECT user_id, partner_id, sum(sent) AS sent FROM ends GROUP BY user_id, partner_id
    ), message_stats AS (
        SELECT user_id, sum(sent)::bigint AS messages_sent, count(*) AS conversation_partners
          FROM pairs
         GROUP BY user_id
    ), days_after AS (
        -- the days in (v_since, v_last] not yet processed by update-user-streaks (none when it
        -- has processed the Saturday): how many the user was active on, and the latest without
        SELECT w.user_id,
               count(a.user_id)                                        AS active_days,
               max(v_since + k.n) FILTER (WHERE a.user_id IS NULL)     AS last_idle_day
          FROM recipients w
         CROSS JOIN generate_series(1, v_last - v_since) AS k(n)
          LEFT JOIN user_daily_activity a ON a.user_id = w.user_id AND a.activity_date = v_since + k.n
         GROUP BY w.user_id
    ), week_end AS (
        -- the streak after update-user-streaks processed the Saturday v_last
        SELECT w.user_id,
               CASE
                   -- processed: the value it wrote that day, kept until the next Saturday
                   WHEN g.streak_day = v_last THEN g.current_streak
                   WHEN g.week_end_day = v_last THEN g.week_end_streak
                   WHEN v_since = v_last AND (g.streak_day IS NULL OR g.streak_day < v_last)
                        THEN coalesce(g.current_streak, 0)  -- not changed since
                   WHEN v_since = v_last THEN 0  -- not changed that day (so it was 0), changed since
                   -- not processed yet: what processing the days through v_last will give
                   WHEN d.last_idle_day IS NULL THEN coalesce(g.current_streak, 0) + d.active_days
                   ELSE v_last - d.last_idle_day
               END AS streak
          FROM recipients w
          LEFT JOIN user_gamification g ON g.user_id = w.user_id
          LEFT JOIN days_after d ON d.user_id = w.user_id
    ), challenge_stats AS (
        SELECT user_id, count(*) AS challenges_completed
          FROM user_challenge_progress
         WHERE status = 'completed' AND (completed_at AT TIME ZONE 'UTC')::date = ANY (v_days)
           AND user_id BETWEEN v_from AND v_to
         GROUP BY user_id
    ), created AS (
        INSERT INTO notifications (user_id, kind, dedup_key, payload, created_at)
        SELECT r.user_id, 'weekly_report', v_week,
               jsonb_build_object(
                   'week', v_week,
                   'period_start', to_char(v_first, 'YYYY-MM-DD'),
                   'period_end', to_char(v_last, 'YYYY-MM-DD'),
                   'messages_sent', coalesce(ms.messages_sent, 0),
                   'conversation_partners', coalesce(ms.conversation_partners, 0),
                   'challenges_completed', coalesce(cs.challenges_completed, 0),
                   'xp_gained', r.xp_gained,
                   'current_streak', e.streak),
               p_as_of
          FROM recipients r
          LEFT JOIN message_stats ms ON ms.user_id = r.user_id
          LEFT JOIN challenge_stats cs ON cs.user_id = r.user_id
          JOIN week_end e ON e.user_id = r.user_id
         WHERE NOT EXISTS (SELECT 1 FROM notifications o   -- sent under the old label
                            WHERE o.user_id = r.user_id AND o.kind = 'weekly_report' AND o.dedup_key = v_old_key
                              AND o.payload ->> 'period_start' = to_char(v_first, 'YYYY-MM-DD'))
        ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM activity) + coalesce((v_progress.counts ->> 'active_users')::bigint, 0),
           (SELECT count(*) FROM created) + coalesce((v_progress.counts ->> 'notifications_created')::bigint, 0)
      INTO v_active, v_created;

    UPDATE job_batch_progress
       SET cursor_user_id = coalesce(v_to, v_lo), done = v_done, batches = batches + 1,
           counts = jsonb_build_object('notifications_created', v_created, 'active_users', v_active),
           updated_at = clock_timestamp()
     WHERE job_name = v_progress.job_name AND occurrence = v_progress.occurrence;

    RETURN jsonb_build_object('notifications_created', v_created, 'active_users', v_active)
        || CASE WHEN v_done THEN '{}' ELSE '{"work_remaining": 1}' END::jsonb;
END;
$$;

CREATE OR REPLACE FUNCTION send_weekly_reports(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('send-weekly-reports', p_as_of)
$$;
