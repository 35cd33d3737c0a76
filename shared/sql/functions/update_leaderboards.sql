-- update-leaderboards (0 * * * *).
-- Sets the week the weekly board covers (the ISO week of p_as_of, Monday first, counting
-- activity up to p_as_of's UTC date), then refreshes the three leaderboard views
-- CONCURRENTLY so readers are never blocked. A view never populated (WITH NO DATA, or
-- after a restore) cannot be refreshed concurrently, so it is populated plainly first.
-- Ranks: rank() gives equal XP equal rank (1, 1, 3); position (row_number, ties broken by
-- user id) is a total, stable order. Both are defined in the views (V001).
CREATE OR REPLACE FUNCTION job_update_leaderboards(p_as_of timestamptz)
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

    INSERT INTO leaderboard_period AS p (singleton, week_start, as_of)
    VALUES (true, date_trunc('week', p_as_of AT TIME ZONE 'UTC')::date, p_as_of)
    ON CONFLICT (singleton) DO UPDATE
       SET week_start = excluded.week_start, as_of = excluded.as_of
     WHERE (p.week_start, p.as_of) IS DISTINCT FROM (excluded.week_start, excluded.as_of);

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
