-- Leaderboards hold only the top of each board; a user's own rank is computed on read.
--
-- Before, the three views held every ranked user (~1 M) with a materialized rank and
-- position: any XP change or ban shifted the position of everyone below, so an hourly
-- REFRESH ... CONCURRENTLY rewrote nearly every row (~50 s at 1 M users, see
-- docs/performance.md). Now each view holds the top N rows (N per language on the
-- language board), N = leaderboard_period.top_n (set by update-leaderboards from its
-- top_n parameter, default 1000). A user's rank anywhere on a board is one count:
-- leaderboard_rank() in shared/sql/functions/leaderboard_rank.sql.
--
-- Same view names and columns as V001, same ranking: rank() gives equal XP equal rank
-- (1, 1, 3); position breaks ties by user id. rank() among the top rows is the rank on the
-- whole board, because every user with more XP than a top row is a top row too. The board
-- is cut at position N: of users tied at the boundary, those with the lower user ids are
-- kept (their rank is the same either way).
--
-- The views are dropped and created WITH NO DATA; update-leaderboards populates a
-- never-populated view plainly before refreshing it concurrently from then on.

ALTER TABLE leaderboard_period
    ADD COLUMN top_n integer NOT NULL DEFAULT 1000 CHECK (top_n > 0);

DROP MATERIALIZED VIEW mv_global_leaderboard;
DROP MATERIALIZED VIEW mv_weekly_leaderboard;
DROP MATERIALIZED VIEW mv_language_leaderboard;

-- The top-N walk of the global and language boards: users by XP, highest first, ties by
-- id (the boards' position order), only users with XP (the boards' own condition).
CREATE INDEX user_gamification_total_xp_idx ON user_gamification (total_xp DESC, user_id) WHERE total_xp > 0;
-- Users off the boards (inactive, banned, deleted: a few percent): leaderboard_rank()
-- subtracts those with more XP from an index-only count of everyone with more XP.
CREATE INDEX users_off_the_boards_idx ON users (id) WHERE account_status <> 'active';

-- Each board: its top N rows in position order first (an ordered walk of the XP index
-- that stops at row N, or a top-N heapsort of the week's totals), then rank() and
-- row_number() over those N rows only.
CREATE MATERIALIZED VIEW mv_global_leaderboard AS
SELECT t.user_id,
       t.username,
       t.total_xp,
       rank()       OVER (ORDER BY t.total_xp DESC)            AS rank,
       row_number() OVER (ORDER BY t.total_xp DESC, t.user_id) AS position
FROM (
    SELECT g.user_id, u.username, g.total_xp
    FROM user_gamification g
    JOIN users u ON u.id = g.user_id
    WHERE u.account_status = 'active' AND g.total_xp > 0
    ORDER BY g.total_xp DESC, g.user_id
    LIMIT (SELECT top_n FROM leaderboard_period)
) t
WITH NO DATA;
CREATE UNIQUE INDEX mv_global_leaderboard_user_idx ON mv_global_leaderboard (user_id);
CREATE INDEX mv_global_leaderboard_position_idx ON mv_global_leaderboard (position);

-- The week's XP per user (the week's activity rows, aggregated once), users off the boards
-- removed by an anti-join on their small partial index, the top N kept by a heapsort; only
-- those N rows are joined to users for their names.
CREATE MATERIALIZED VIEW mv_weekly_leaderboard AS
SELECT p.week_start,
       t.user_id,
       u.username,
       t.weekly_xp,
       rank()       OVER (ORDER BY t.weekly_xp DESC)            AS rank,
       row_number() OVER (ORDER BY t.weekly_xp DESC, t.user_id) AS position
FROM (
    SELECT w.user_id, w.weekly_xp
    FROM (
        SELECT a.user_id, sum(a.xp_earned)::bigint AS weekly_xp
        FROM leaderboard_period p
        JOIN user_daily_activity a
          ON a.activity_date >= p.week_start
         AND a.activity_date <  p.week_start + 7
         AND a.activity_date <= (p.as_of AT TIME ZONE 'UTC')::date
        GROUP BY a.user_id
        HAVING sum(a.xp_earned) > 0
    ) w
    WHERE NOT EXISTS (SELECT FROM users o WHERE o.id = w.user_id AND o.account_status <> 'active')
    ORDER BY w.weekly_xp DESC, w.user_id
    LIMIT (SELECT top_n FROM leaderboard_period)
) t
JOIN users u ON u.id = t.user_id
CROSS JOIN leaderboard_period p
WITH NO DATA;
CREATE UNIQUE INDEX mv_weekly_leaderboard_user_idx ON mv_weekly_leaderboard (user_id);
CREATE INDEX mv_weekly_leaderboard_position_idx ON mv_weekly_leaderboard (position);

-- Per language, the same ordered walk of the XP index, keeping that language's users, to
-- its row N. (A language with fewer than N users walks the whole index: ~1-2 s at 1 M.)
CREATE MATERIALIZED VIEW mv_language_leaderboard AS
SELECT t.language,
       t.user_id,
       t.username,
       t.total_xp,
       rank()       OVER (PARTITION BY t.language ORDER BY t.total_xp DESC)            AS rank,
       row_number() OVER (PARTITION BY t.language ORDER BY t.total_xp DESC, t.user_id) AS position
FROM (
    SELECT l.language, top.user_id, top.username, top.total_xp
    FROM (SELECT DISTINCT learning_language AS language FROM users WHERE account_status = 'active') l
    CROSS JOIN LATERAL (
        SELECT g.user_id, u.username, g.total_xp
        FROM user_gamification g
        JOIN users u ON u.id = g.user_id
        WHERE u.account_status = 'active' AND g.total_xp > 0 AND u.learning_language = l.language
        ORDER BY g.total_xp DESC, g.user_id
        LIMIT (SELECT top_n FROM leaderboard_period)
    ) top
) t
WITH NO DATA;
CREATE UNIQUE INDEX mv_language_leaderboard_key_idx ON mv_language_leaderboard (language, user_id);
CREATE INDEX mv_language_leaderboard_position_idx ON mv_language_leaderboard (language, position);
