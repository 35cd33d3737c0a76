-- update-leaderboards (0 * * * *).
-- Sets the week the weekly board covers (the ISO week of p_as_of, Monday first, counting
-- activity up to p_as_of's UTC date), then refreshes the three leaderboard views
-- CONCURRENTLY so readers are never blocked. A view never populated (WITH NO DATA, or
-- after a restore) cannot be refreshed concurrently, so it is populated plainly first.
-- Ranks: rank() gives equal XP equal rank (1, 1, 3); position (row_number, ties broken by
-- user id) is a total, stable order. Both are defined in the views (V007).
-- The views hold the top p_top_n rows of each board (per language on the language board);
-- p_top_n is stored in leaderboard_period.top_n, which the views read. A user's own rank
-- anywhere on a board is leaderboard_rank() (leaderboard_rank.sql), computed on read.

-- The signature before top_n (a second overload would make the runner's call ambiguous).
DROP FUNCTION IF EXISTS job_update_leaderboards(timestamptz);

CREATE OR REPLACE FUNCTION job_update_leaderboards(p_as_of timestamptz, p_top_n integer DEFAULT 1000)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_view       text;
    v_populated  boolean;
    v_global     bigint;
    v_weekly     bigint;
    v_language   bigint;
BEGIN
    IF p_as_of IS NULL THEN
        RAISE EXCEPTION 'update-leaderboards: p_as_of must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_top_n IS NULL OR p_top_n < 1 THEN
        RAISE EXCEPTION 'update-leaderboards: p_top_n must be at least 1, got %', p_top_n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the week's XP per user is a hash aggregate of ~500,000 groups at 1 M users: in memory
    PERFORM set_config('work_mem', '64MB', true);

    INSERT INTO leaderboard_period AS p (singleton, week_start, as_of, top_n)
    VALUES (true, date_trunc('week', p_as_of AT TIME ZONE 'UTC')::date, p_as_of, p_top_n)
    ON CONFLICT (singleton) DO UPDATE
       SET week_start = excluded.week_start, as_of = excluded.as_of, top_n = excluded.top_n
     WHERE (p.week_start, p.as_of, p.top_n) IS DISTINCT FROM (excluded.week_start, excluded.as_of, excluded.top_n);

    -- a loop over the three views, not over rows
    FOREACH v_view IN ARRAY ARRAY['mv_global_leaderboard', 'mv_weekly_leaderboard', 'mv_language_leaderboard'] LOOP
        SELECT c.relispopulated INTO v_populated FROM pg_class c WHERE c.oid = v_view::regclass;
        IF v_populated THEN
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', v_view);
        ELSE
            EXECUTE format('REFRESH MATERIALIZED VIEW %I', v_view);
        END IF;
    END LOOP;

    SELECT count(*) INTO v_global FROM mv_global_leaderboard;
    SELECT count(*) INTO v_weekly FROM mv_weekly_leaderboard;
    SELECT count(*) INTO v_language FROM mv_language_leaderboard;
    RETURN jsonb_build_object(
        'views_refreshed', 3,
        'global_rows', v_global,
        'weekly_rows', v_weekly,
        'language_rows', v_language);
END;
$$;

CREATE OR REPLACE FUNCTION update_leaderboards(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('update-leaderboards', 'job_update_leaderboards($1)', p_as_of)
$$;
