-- "Your rank": one user's place on each leaderboard, computed on read.
--
-- The leaderboard views hold only the top N of each board (V007); the app shows a user's
-- own rank from this function, wherever the user stands. It is the views' rank(): 1 + the
-- number of users on the same board with strictly more XP (equal XP, equal rank), so for
-- a user inside the top N it equals the view's rank (after a refresh at the same as_of).
--
-- On a board means: account_status 'active' and XP > 0 on that board (all-time XP for the
-- global and language boards; this ISO week's XP, up to p_as_of's UTC date, for the
-- weekly board). A user not on a board gets a NULL rank for it (banned, deleted or inactive,
-- or no XP); an unknown user gets no row.
--
-- Cost at 1 M users: the global rank is an index-only count of the XP index (partial,
-- total_xp > 0) minus the few users off the boards with more XP (their own partial index);
-- the language rank counts that language's users with more XP (a join); the weekly rank
-- aggregates the week's activity (there is no per-week XP column to index). Measured in
-- docs/performance.md. Runs with the caller's rights (it reads users, user_gamification and
-- user_daily_activity).
CREATE OR REPLACE FUNCTION leaderboard_rank(p_user_id bigint, p_as_of timestamptz DEFAULT now())
RETURNS TABLE (global_rank bigint, weekly_rank bigint, language_rank bigint, total_xp bigint, weekly_xp bigint)
LANGUAGE sql STABLE AS $$
    WITH me AS (
        SELECT u.id,
               u.account_status = 'active'                            AS on_boards,
               u.learning_language,
               coalesce(g.total_xp, 0)                                 AS total_xp,
               date_trunc('week', p_as_of AT TIME ZONE 'UTC')::date    AS week_start,
               (p_as_of AT TIME ZONE 'UTC')::date                      AS last_day
        FROM users u
        LEFT JOIN user_gamification g ON g.user_id = u.id
        WHERE u.id = p_user_id
    ), mine AS (
        SELECT me.*,
               (SELECT coalesce(sum(a.xp_earned), 0)::bigint
                  FROM user_daily_activity a
                 WHERE a.user_id = me.id
                   AND a.activity_date >= me.week_start
                   AND a.activity_date <  me.week_start + 7
                   AND a.activity_date <= me.last_day) AS weekly_xp
        FROM me
    )
    SELECT
        CASE WHEN m.on_boards AND m.total_xp > 0 THEN
            1 + (SELECT count(*) FROM user_gamification g
                  WHERE g.total_xp > m.total_xp AND g.total_xp > 0)
              - (SELECT count(*) FROM users o JOIN user_gamification g ON g.user_id = o.id
                  WHERE o.account_status <> 'active' AND g.total_xp > m.total_xp)
        END,
        CASE WHEN m.on_boards AND m.weekly_xp > 0 THEN
            1 + (SELECT count(*)
                   FROM (SELECT a.user_id
                           FROM user_daily_activity a
                          WHERE a.activity_date >= m.week_start
                            AND a.activity_date <  m.week_start + 7
                            AND a.activity_date <= m.last_day
                          GROUP BY a.user_id
                         HAVING sum(a.xp_earned) > m.weekly_xp) w
                  WHERE NOT EXISTS (SELECT FROM users o WHERE o.id = w.user_id AND o.account_status <> 'active'))
        END,
        CASE WHEN m.on_boards AND m.total_xp > 0 THEN
            1 + (SELECT count(*) FROM user_gamification g JOIN users u ON u.id = g.user_id
                  WHERE g.total_xp > m.total_xp AND g.total_xp > 0
                    AND u.learning_language = m.learning_language AND u.account_status = 'active')
        END,
        m.total_xp,
        m.weekly_xp
    FROM mine m
$$;
