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
-- previous_longest_streak: the guide's rollback), streak_day = the day, and updated_at = the
-- real time of the change: clock_timestamp() taken once, after the ledger lock, so it is
-- later than the run's logged started_at (the runner commits its claim row before the
-- work; logged_run inserts its row earlier in the same transaction, whose now() may be
-- earlier still) and later than any earlier run's changes (that run held the lock until it
-- committed). The guide's `... WHERE updated_at >= '<the run's started_at>'` therefore
-- selects exactly this run's rows; a rollback by as_of selects
-- `streak_day IN (SELECT day FROM streak_days WHERE processed_as_of = '<as_of>')`.
-- When the day is a Saturday (the last day of send-weekly-reports' week), changed rows also
-- keep the new streak in week_end_streak (week_end_day = the day), so the weekly report
-- can read the streak at the week's end after later days changed it.
-- Unchanged rows are not written.
--
-- Bounded batches (registry: mode BATCHED, resumable, batch_size): with p_batch_size a call
-- does ONE batch: the next p_batch_size users (by id) of the first unprocessed day, after
-- the cursor in job_batch_progress (V045, occurrence = the day), and commits its progress
-- (the cursor and the day's counts so far) with its work. The day's last batch inserts the
-- day's ledger row (streak_days stays the completion watermark; its counts are the day's
-- whole counts) and deletes the day's progress row. The runner repeats the call, each its own transaction, while work remains;
-- a run stopped by its budget fails and the next delivery resumes after the cursor. Every
-- batch takes the ledger lock and its own clock_timestamp() after it, so what is said above
-- of updated_at holds for each delivery's rows (a delivery that resumed a day started by a
-- cut-off one selects its own rows; the day's whole rows are selected by streak_day).
-- Without p_batch_size (the guide's SELECT update_user_streaks(); through logged_run) a call
-- does every unprocessed day whole, each day one set-based pass, as before.
-- The result: the occurrence's counts, every day this as_of completed (with the batches of
-- an earlier, cut-off delivery), plus the unfinished day's counts so far, and
-- work_remaining: 1 while a batch or a day is left (absent when none is); a call with
-- nothing left to do reports zeros (a re-run is a no-op).
DROP FUNCTION IF EXISTS job_update_user_streaks(timestamptz);

CREATE OR REPLACE FUNCTION job_update_user_streaks(p_as_of timestamptz, p_batch_size integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_yesterday  date;
    v_day        date;
    v_lo         users.id%TYPE;  -- the cursor: the last user done on the day (NULL: none yet)
    v_from       users.id%TYPE;  -- the batch: its first user (NULL: none left) ...
    v_to         users.id%TYPE;  -- ... through this one
    v_done       boolean;        -- no user of the day is left after this batch
    v_progress   job_batch_progress%ROWTYPE;
    v_inc        bigint;
    v_broken     bigint;
    v_with       bigint;
    v_worked     boolean := false;
    v_partial    boolean := false;
    v_days       bigint;
    v_total_inc  bigint;
    v_total_brk  bigint;
    v_changed_at timestamptz;
    v_saturday   boolean;
BEGIN
    IF p_as_of IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'update-user-streaks: p_as_of must be given and p_batch_size must be >= 1 (got %)',
            p_batch_size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_yesterday := (p_as_of AT TIME ZONE 'UTC')::date - 1;

    -- Serialise concurrent runs on the watermark (readers are not blocked): the second
    -- run waits, then sees the first one's ledger rows and progress, and does only what is left.
    LOCK TABLE streak_days IN EXCLUSIVE MODE;
    v_changed_at := clock_timestamp();

    -- transaction-local: the day's ~250,000 active users hash in memory at 1 M users
    PERFORM set_config('work_mem', '64MB', true);

    LOOP
        SELECT coalesce(max(day) + 1, v_yesterday) INTO v_day FROM streak_days;
        EXIT WHEN v_day > v_yesterday;
        v_worked := true;
        v_saturday := extract(isodow FROM v_day) = 6;

        SELECT * INTO v_progress FROM job_batch_progress
         WHERE job_name = 'update-user-streaks' AND occurrence = v_day::text;
        -- the batch: the next users after the day's cursor (every user without p_batch_size),
        -- as plain bounds (01_users_batch.sql)
        v_lo := v_progress.cursor_user_id;
        SELECT b.first_id, b.last_id, b.last_batch INTO v_from, v_to, v_done FROM users_batch(v_lo, p_batch_size) b;

        -- The batch's range is stated on every table a statement reads (the planner does not
        -- carry it across a join: without it a batch's UPDATE read all of user_gamification, and
        -- its anti-join the whole day's activity).
        -- Users not in good standing are found through the small partial index
        -- users_not_in_good_standing_idx (V006) instead of a pass over every user.
        -- Existing rows are incremented by a plain UPDATE joined to the day's activity; only
        -- users without a row yet (rare) go through INSERT ... ON CONFLICT, which also covers
        -- a row the app creates meanwhile.
        WITH active AS (
            SELECT a.user_id
              FROM user_daily_activity a
             WHERE a.activity_date = v_day
               AND a.user_id BETWEEN v_from AND v_to
               AND NOT EXISTS (SELECT 1 FROM users u
                                WHERE u.id = a.user_id AND u.account_status IN ('banned', 'deleted'))
        ), bumped AS (
            UPDATE user_gamification g
               SET previous_streak_value   = g.current_streak,
                   previous_longest_streak = g.longest_streak,
                   current_streak          = g.current_streak + 1,
                   longest_streak          = greatest(g.longest_streak, g.current_streak + 1),
                   streak_day              = v_day,
                   week_end_day            = CASE WHEN v_saturday THEN v_day ELSE g.week_end_day END,
                   week_end_streak         = CASE WHEN v_saturday THEN g.current_streak + 1 ELSE g.week_end_streak END,
                   updated_at              = v_changed_at
              FROM active a
             WHERE g.user_id = a.user_id
               AND g.user_id BETWEEN v_from AND v_to
            RETURNING g.user_id
        ), created AS (
            INSERT INTO user_gamification AS g
                   (user_id, current_streak, longest_streak, previous_streak_value, previous_longest_streak,
                    streak_day, week_end_day, week_end_streak, updated_at)
            SELECT a.user_id, 1, 1, 0, 0, v_day, CASE WHEN v_saturday THEN v_day END, CASE WHEN v_saturday THEN 1 END,
                   v_changed_at
              FROM active a
             WHERE NOT EXISTS (SELECT 1 FROM user_gamification x WHERE x.user_id = a.user_id)
            ON CONFLICT (user_id) DO UPDATE
               SET previous_streak_value   = g.current_streak,
                   previous_longest_streak = g.longest_streak,
                   current_streak          = g.current_streak + 1,
                   longest_streak          = greatest(g.longest_streak, g.current_streak + 1),
                   streak_day              = excluded.streak_day,
                   week_end_day            = coalesce(excluded.week_end_day, g.week_end_day),
                   week_end_streak         = CASE WHEN v_saturday THEN g.current_streak + 1 ELSE g.week_end_streak END,
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
                   week_end_day            = CASE WHEN v_saturday THEN v_day ELSE g.week_end_day END,
                   week_end_streak         = CASE WHEN v_saturday THEN 0 ELSE g.week_end_streak END,
                   updated_at              = v_changed_at
             WHERE g.current_streak > 0
               AND g.user_id BETWEEN v_from AND v_to
               AND NOT EXISTS (SELECT 1 FROM users u
                                WHERE u.id = g.user_id AND u.account_status IN ('banned', 'deleted'))
               AND NOT EXISTS (SELECT 1 FROM user_daily_activity a
                                WHERE a.user_id = g.user_id AND a.activity_date = v_day
                                  AND a.user_id BETWEEN v_from AND v_to)
            RETURNING 1
        )
        SELECT count(*) INTO v_broken FROM broken;

        -- the batch's users holding a streak after the day (the day's ledger row sums them)
        SELECT count(*) INTO v_with
          FROM user_gamification g
         WHERE g.current_streak > 0
           AND g.user_id BETWEEN v_from AND v_to
           AND NOT EXISTS (SELECT 1 FROM users u
                            WHERE u.id = g.user_id AND u.account_status IN ('banned', 'deleted'));

        v_inc    := v_inc + coalesce((v_progress.counts ->> 'streaks_incremented')::bigint, 0);
        v_broken := v_broken + coalesce((v_progress.counts ->> 'streaks_broken')::bigint, 0);
        v_with   := v_with + coalesce((v_progress.counts ->> 'users_with_streak')::bigint, 0);
        IF NOT v_done THEN
            -- the day goes on in the next batch: its cursor and counts so far
            INSERT INTO job_batch_progress AS p (job_name, occurrence, cursor_user_id, batches, counts)
            VALUES ('update-user-streaks', v_day::text, v_to, 1,
                    jsonb_build_object('streaks_incremented', v_inc, 'streaks_broken', v_broken,
                                       'users_with_streak', v_with))
            ON CONFLICT (job_name, occurrence) DO UPDATE
               SET cursor_user_id = excluded.cursor_user_id, batches = p.batches + 1,
                   counts = excluded.counts, updated_at = clock_timestamp();
            v_partial := true;
            EXIT;
        END IF;
        -- the day's last batch: the watermark, with the day's whole counts; the ledger row
        -- now says the day is done, so its progress row goes (a rollback that deletes the
        -- ledger row, as the guide's does, then redoes the day from the start)
        DELETE FROM job_batch_progress WHERE job_name = 'update-user-streaks' AND occurrence = v_day::text;
        INSERT INTO streak_days (day, processed_as_of, streaks_incremented, streaks_broken, users_with_streak)
        VALUES (v_day, p_as_of, v_inc, v_broken, v_with);
        EXIT WHEN p_batch_size IS NOT NULL;
    END LOOP;

    IF NOT v_worked THEN
        RETURN jsonb_build_object('days_processed', 0, 'streaks_incremented', 0, 'streaks_broken', 0);
    END IF;
    SELECT count(*), coalesce(sum(streaks_incremented), 0), coalesce(sum(streaks_broken), 0)
      INTO v_days, v_total_inc, v_total_brk
      FROM streak_days WHERE processed_as_of = p_as_of;
    IF v_partial THEN
        v_total_inc := v_total_inc + v_inc;
        v_total_brk := v_total_brk + v_broken;
    END IF;
    RETURN jsonb_build_object(
        'days_processed', v_days,
        'streaks_incremented', v_total_inc,
        'streaks_broken', v_total_brk)
        || CASE WHEN v_partial OR (SELECT max(day) FROM streak_days) < v_yesterday
                THEN '{"work_remaining": 1}' ELSE '{}' END::jsonb;
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
    SELECT logged_run('update-user-streaks', p_as_of)
$$;
