-- calculate-daily-metrics (0 1 * * *). Day D is p_as_of's UTC date minus one.
--
-- Needs update-user-streaks for D (users_with_streak comes from its streak_days ledger):
-- when streaks_done_for(p_as_of) is false the run fails with SQLSTATE JB001 and a message
-- naming the missing job, the day and the as_of to run it for, instead of writing wrong numbers.
-- Otherwise the daily_metrics row for D is upserted; the WHERE ... IS DISTINCT FROM clause
-- makes a re-run with identical values write nothing (metrics_rows_written = 0).
-- "On D" means [D 00:00 UTC, D+1 00:00 UTC).
CREATE OR REPLACE FUNCTION job_calculate_daily_metrics(p_as_of timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_day      date;
    v_from     timestamptz;
    v_to       timestamptz;
    v_streaks  integer;
    v_written  bigint;
    v_row      daily_metrics%ROWTYPE;
BEGIN
    IF p_as_of IS NULL THEN
        RAISE EXCEPTION 'calculate-daily-metrics: p_as_of must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_day  := (p_as_of AT TIME ZONE 'UTC')::date - 1;
    v_from := v_day::timestamp AT TIME ZONE 'UTC';
    v_to   := (v_day + 1)::timestamp AT TIME ZONE 'UTC';

    IF NOT streaks_done_for(p_as_of) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'JB001',
            MESSAGE = format('calculate-daily-metrics needs update-user-streaks for %s, which has not run yet; '
                             'run update-user-streaks for as_of %s first',
                             to_char(v_day, 'YYYY-MM-DD'), to_char(v_day + 1, 'YYYY-MM-DD"T00:00:00Z"'));
    END IF;

    SELECT users_with_streak INTO v_streaks FROM streak_days WHERE day = v_day;
    IF NOT FOUND THEN
        -- The ledger covers later days but not D (it started after D): the streak count
        -- for D was never recorded and cannot be rebuilt, so refuse rather than guess.
        RAISE EXCEPTION USING
            ERRCODE = 'JB002',
            MESSAGE = format('calculate-daily-metrics cannot compute %s: update-user-streaks never processed that day '
                             '(its ledger streak_days starts at %s), so users_with_streak is unknown',
                             to_char(v_day, 'YYYY-MM-DD'),
                             (SELECT to_char(min(day), 'YYYY-MM-DD') FROM streak_days));
    END IF;

    v_row.metric_date          := v_day;
    v_row.users_with_streak    := v_streaks;
    v_row.calculated_as_of     := p_as_of;
    SELECT count(*), coalesce(sum(stories_posted), 0)
      INTO v_row.daily_active_users, v_row.stories_posted
      FROM user_daily_activity WHERE activity_date = v_day;
    SELECT count(*) INTO v_row.new_signups
      FROM users WHERE created_at >= v_from AND created_at < v_to;
    SELECT count(*) INTO v_row.messages_sent
      FROM messages WHERE created_at >= v_from AND created_at < v_to AND is_deleted = false;
    SELECT count(*) INTO v_row.challenges_completed
      FROM user_challenge_progress
     WHERE status = 'completed' AND completed_at >= v_from AND completed_at < v_to;
    SELECT count(*) INTO v_row.reports_filed
      FROM user_reports WHERE created_at >= v_from AND created_at < v_to;
    SELECT count(DISTINCT user_id) INTO v_row.users_banned
      FROM moderation_actions WHERE action = 'ban' AND created_at >= v_from AND created_at < v_to;

    WITH written AS (
        INSERT INTO daily_metrics AS m
        SELECT (v_row).*
        ON CONFLICT (metric_date) DO UPDATE
           SET daily_active_users   = excluded.daily_active_users,
               new_signups          = excluded.new_signups,
               messages_sent        = excluded.messages_sent,
               stories_posted       = excluded.stories_posted,
               challenges_completed = excluded.challenges_completed,
               users_with_streak    = excluded.users_with_streak,
               reports_filed        = excluded.reports_filed,
               users_banned         = excluded.users_banned,
               calculated_as_of     = excluded.calculated_as_of
         WHERE (m.daily_active_users, m.new_signups, m.messages_sent, m.stories_posted, m.challenges_completed,
                m.users_with_streak, m.reports_filed, m.users_banned)
               IS DISTINCT FROM
               (excluded.daily_active_users, excluded.new_signups, excluded.messages_sent, excluded.stories_posted,
                excluded.challenges_completed, excluded.users_with_streak, excluded.reports_filed,
                excluded.users_banned)
        RETURNING 1
    )
    SELECT count(*) INTO v_written FROM written;

    RETURN jsonb_build_object(
        'metrics_rows_written', v_written,
        'daily_active_users', v_row.daily_active_users,
        'new_signups', v_row.new_signups,
        'messages_sent', v_row.messages_sent);
END;
$$;

CREATE OR REPLACE FUNCTION calculate_daily_metrics(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('calculate-daily-metrics', 'job_calculate_daily_metrics($1)', p_as_of)
$$;
