-- The leaderboard views were created WITH NO DATA (V007), so the guide's
-- REFRESH MATERIALIZED VIEW CONCURRENTLY mv_global_leaderboard; failed ("cannot refresh
-- materialized view concurrently ... not populated") until update-leaderboards had run once.
-- Populate them here, so it works from the first minute after migrating. (Views already
-- populated are left alone; a view emptied later, by a restore, is repopulated plainly by
-- update-leaderboards before it refreshes concurrently.) The weekly board covers the ISO
-- week of leaderboard_period until update-leaderboards sets it from its as_of.
DO $$
DECLARE
    v_view text;
BEGIN
    FOREACH v_view IN ARRAY ARRAY['mv_global_leaderboard', 'mv_weekly_leaderboard', 'mv_language_leaderboard'] LOOP
        IF NOT (SELECT c.relispopulated FROM pg_class c WHERE c.oid = v_view::regclass) THEN
            EXECUTE format('REFRESH MATERIALIZED VIEW %I', v_view);
        END IF;
    END LOOP;
END $$;
