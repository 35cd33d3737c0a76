-- update-user-streaks (0 0 * * *). Yesterday Y is p_as_of's UTC date minus one.
--
-- The watermark is the streak_days ledger: one row per processed activity day, inserted
-- in the same transaction as that day's streak updates. The days to process run from the
-- day after the ledger's last day through Y, in order (a catch-up after an outage); with
-- an empty ledger only Y; when Y is already in the ledger, nothing (re-runs and old
-- backfills are no-ops). Each day is one set-based pass (the loop is over days, never users):
--   * users with a user_daily_activity row on the day, not banned/deleted: streak + 1,
--     longest follows (a user_gamification row is created if missing);
--   * users without one and a streak above zero, not banned/deleted: streak breaks to 0.
-- A changed row keeps the values before the change (previous_streak_value,
-- previous_longest_streak: the guide's rollback), streak_day = the day, updated_at = p_as_of.
-- Unchanged rows are not written.
CREATE OR REPLACE FUNCTION job_update_user_streaks(p_as_of timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_yesterday  date;
    v_day        date;
    v_inc        bigint;
    v_broken     bigint;
    v_with       bigint;
    v_days       integer := 0;
    v_total_inc  bigint := 0;
    v_total_brk  bigint := 0;
BEGIN
    IF p_as_of IS NULL THEN
        RAISE EXCEPTION 'update-user-streaks: p_as_of must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_yesterday := (p_as_of AT TIME ZONE 'UTC')::date - 1;

    -- Serialise concurrent runs on the watermark (readers are not blocked): the second
    -- run waits, then sees the first one's ledger rows and has nothing left to do.
    LOCK TABLE streak_days IN EXCLUSIVE MODE;
    SELECT coalesce(max(day) + 1, v_yesterday) INTO v_day FROM streak_days;

    -- transaction-local: the day's ~250,000 active users hash in memory at 1 M users
    PERFORM set_config('work_mem', '64MB', true);

    WHILE v_day <= v_yesterday LOOP
        -- Users not in good standing are found through the small partial index
        -- users_not_in_good_standing_idx (V006) instead of a pass over every user.
        -- Existing rows are incremented by a plain UPDATE joined to the day's activity; only
        -- users without a row yet (rare) go through INSERT ... ON CONFLICT, which also covers
        -- a row the app creates meanwhile.
        WITH active AS (
            SELECT a.user_id
              FROM user_daily_activity a
             WHERE a.activity_date = v_day
               AND NOT EXISTS (SELECT 1 FROM users u
                                WHERE u.id = a.user_id AND u.account_status IN ('banned', 'deleted'))
        ), bumped AS (
            UPDATE user_gamification g
               SET previous_streak_value   = g.current_streak,
                   previous_longest_streak = g.longest_streak,
                   current_streak          = g.current_streak + 1,
                   longest_streak          = greatest(g.longest_streak, g.current_streak + 1),
                   streak_day              = v_day,
                   updated_at              = p_as_of
              FROM active a
             WHERE g.user_id = a.user_id
            RETURNING g.user_id
        ), created AS (
            INSERT INTO user_gamification AS g
                   (user_id, current_streak, longest_streak, previous_streak_value, previous_longest_streak,
                    streak_day, updated_at)
            SELECT a.user_id, 1, 1, 0, 0, v_day, p_as_of
              FROM active a
             WHERE NOT EXISTS (SELECT 1 FROM user_gamification x WHERE x.user_id = a.user_id)
            ON CONFLICT (user_id) DO UPDATE
               SET previous_streak_value   = g.current_streak,
                   previous_longest_streak = g.longest_streak,
                   current_streak          = g.current_streak + 1,
                   longest_streak          = greatest(g.longest_streak, g.current_streak + 1),
                   streak_day              = excluded.streak_day,
                   updated_at              = excluded.updated_at
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM bumped) + (SELECT count(*) FROM created) INTO v_inc;

        WITH broken AS (
            UPDATE user_gamification g
               SET previous_streak_value   = g.current_streak,
                   previous_longest_streak = g.longest_streak,
                   current_streak          = 0,
                   streak_day              = v_day,
                   updated_at              = p_as_of
             WHERE g.current_streak > 0
               AND NOT EXISTS (SELECT 1 FROM users u
                                WHERE u.id = g.user_id AND u.account_status IN ('banned', 'deleted'))
               AND NOT EXISTS (SELECT 1 FROM user_daily_activity a
                                WHERE a.user_id = g.user_id AND a.activity_date = v_day)
            RETURNING 1
        )
        SELECT count(*) INTO v_broken FROM broken;

        SELECT count(*) INTO v_with
          FROM user_gamification g
         WHERE g.current_streak > 0
           AND NOT EXISTS (SELECT 1 FROM users u
                            WHERE u.id = g.user_id AND u.account_status IN ('banned', 'deleted'));

        INSERT INTO streak_days (day, processed_as_of, streaks_incremented, streaks_broken, users_with_streak)
        VALUES (v_day, p_as_of, v_inc, v_broken, v_with);

        v_days := v_days + 1;
        v_total_inc := v_total_inc + v_inc;
        v_total_brk := v_total_brk + v_broken;
        v_day := v_day + 1;
    END LOOP;

    RETURN jsonb_build_object(
        'days_processed', v_days,
        'streaks_incremented', v_total_inc,
        'streaks_broken', v_total_brk);
END;
$$;

-- The completion check other jobs depend on (registry: completion_check): true when the
-- ledger covers p_as_of's yesterday, whichever run (on time or a later catch-up) did it.
CREATE OR REPLACE FUNCTION streaks_done_for(p_as_of timestamptz)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT max(day) FROM streak_days) >= (p_as_of AT TIME ZONE 'UTC')::date - 1, false)
$$;

CREATE OR REPLACE FUNCTION update_user_streaks(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('update-user-streaks', 'job_update_user_streaks($1)', p_as_of)
$$;
