-- send-weekly-reports (0 0 * * 0). D is p_as_of's UTC date; the week reported is the seven
-- whole UTC days [D-7, D-1] (on the Sunday 00:00 schedule: the Sunday..Saturday just
-- ended, so every day is reported exactly once). The notification is keyed by the ISO
-- week of D-1 ('IYYY-"W"IW', e.g. '2026-W48'), at most one per user per key.
-- Recipients: users with a user_daily_activity row in the window, in good standing
-- ('active'), not opted out. Payload: week, period_start, period_end, messages_sent (sent
-- in the window, not deleted), conversation_partners (distinct users they sent to or
-- received from in the window), challenges_completed (in the window), xp_gained (sum of
-- xp_earned over the window's days), current_streak.
-- Scale (1,000,000 users: 2.6 M messages and 1.6 M activity rows a week, ~500,000 reports):
-- the window's messages are read once, from the covering index idx_messages_created (V006,
-- an index-only scan), and reduced to one row per (sender, recipient) pair with its count;
-- each user's messages_sent and distinct partners come from those pairs seen from both
-- ends. That aggregation is a CREATE TEMP TABLE ... AS, which, unlike INSERT ... SELECT,
-- may use parallel workers, and it runs with a transaction-local work_mem large enough to
-- hash the pairs in memory. The INSERT then joins plain per-user rows.
CREATE OR REPLACE FUNCTION job_send_weekly_reports(p_as_of timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_first    date;
    v_last     date;
    v_from     timestamptz;
    v_to       timestamptz;
    v_week     text;
    v_active   bigint;
    v_created  bigint;
BEGIN
    IF p_as_of IS NULL THEN
        RAISE EXCEPTION 'send-weekly-reports: p_as_of must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_last  := (p_as_of AT TIME ZONE 'UTC')::date - 1;
    v_first := v_last - 6;
    v_from  := v_first::timestamp AT TIME ZONE 'UTC';
    v_to    := (v_last + 1)::timestamp AT TIME ZONE 'UTC';
    v_week  := to_char(v_last, 'IYYY-"W"IW');

    -- transaction-local: ends with this run's transaction
    PERFORM set_config('work_mem', '128MB', true);

    DROP TABLE IF EXISTS pg_temp.weekly_report_messages;
    CREATE TEMP TABLE weekly_report_messages ON COMMIT DROP AS
    WITH pairs AS (
        SELECT m.sender_id, m.recipient_id, count(*) AS sent
          FROM messages m
         WHERE m.created_at >= v_from AND m.created_at < v_to AND m.is_deleted = false
         GROUP BY m.sender_id, m.recipient_id
    ), ends AS (
        -- each pair from both ends: the sender sent its messages, both have the partner
        SELECT sender_id AS user_id, recipient_id AS partner_id, sent FROM pairs
        UNION ALL
        SELECT recipient_id, sender_id, 0 FROM pairs
    )
    SELECT user_id, sum(sent)::bigint AS messages_sent, count(DISTINCT partner_id) AS conversation_partners
      FROM ends
     GROUP BY user_id;

    WITH activity AS (
        SELECT user_id, sum(xp_earned) AS xp_gained
          FROM user_daily_activity
         WHERE activity_date BETWEEN v_first AND v_last
         GROUP BY user_id
    ), recipients AS (
        SELECT w.user_id, w.xp_gained
          FROM activity w
          JOIN users u ON u.id = w.user_id
         WHERE u.account_status = 'active' AND NOT u.weekly_report_opt_out
    ), challenge_stats AS (
        SELECT user_id, count(*) AS challenges_completed
          FROM user_challenge_progress
         WHERE status = 'completed' AND completed_at >= v_from AND completed_at < v_to
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
                   'current_streak', coalesce(g.current_streak, 0)),
               p_as_of
          FROM recipients r
          LEFT JOIN pg_temp.weekly_report_messages ms ON ms.user_id = r.user_id
          LEFT JOIN challenge_stats cs ON cs.user_id = r.user_id
          LEFT JOIN user_gamification g ON g.user_id = r.user_id
        ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM activity), (SELECT count(*) FROM created) INTO v_active, v_created;

    DROP TABLE pg_temp.weekly_report_messages;

    RETURN jsonb_build_object('notifications_created', v_created, 'active_users', v_active);
END;
$$;

CREATE OR REPLACE FUNCTION send_weekly_reports(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('send-weekly-reports', 'job_send_weekly_reports($1)', p_as_of)
$$;
