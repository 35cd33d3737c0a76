-- jobctl bench: each write-heavy job's floor, the plainest statement that writes the same
-- rows (jobctl/bench/floor.py; docs/performance.md). The rows are first collected, untimed,
-- into the session's temporary table bench_floor; then `<job>_write` alone is timed, in a
-- transaction that is rolled back. Parameters are bound, never formatted into the text.

-- name: drop
DROP TABLE IF EXISTS pg_temp.bench_floor

-- name: analyze
ANALYZE pg_temp.bench_floor

-- name: streaks_table
CREATE TEMP TABLE bench_floor AS
SELECT user_id, current_streak, longest_streak, previous_streak_value, previous_longest_streak,
       streak_day, week_end_day, week_end_streak, updated_at
  FROM user_gamification WITH NO DATA

-- name: streaks_collect
-- After the real run: the rows it changed (streak_day is set to the processed day only by
-- that day's processing), with the values it wrote.
INSERT INTO bench_floor
SELECT user_id, current_streak, longest_streak, previous_streak_value, previous_longest_streak,
       streak_day, week_end_day, week_end_streak, updated_at
  FROM user_gamification
 WHERE streak_day = %(yesterday)s

-- name: streaks_write
-- The same rows, the same columns, the same values: a plain UPDATE ... FROM.
UPDATE user_gamification g
   SET current_streak          = f.current_streak,
       longest_streak          = f.longest_streak,
       previous_streak_value   = f.previous_streak_value,
       previous_longest_streak = f.previous_longest_streak,
       streak_day              = f.streak_day,
       week_end_day            = f.week_end_day,
       week_end_streak         = f.week_end_streak,
       updated_at              = f.updated_at
  FROM bench_floor f
 WHERE g.user_id = f.user_id

-- name: notifications_table
CREATE TEMP TABLE bench_floor AS
SELECT user_id, kind, dedup_key, payload, created_at FROM notifications WITH NO DATA

-- name: notifications_collect
-- After the real run: the notifications it created (a job stamps them with its as_of).
INSERT INTO bench_floor
SELECT user_id, kind, dedup_key, payload, created_at
  FROM notifications
 WHERE kind = %(kind)s AND created_at = %(as_of)s

-- name: notifications_write
-- The same number of rows, same users, kind and payloads, with a dedup key of the same
-- length class that does not collide with the real ones (notifications_once): a plain
-- INSERT ... SELECT, with its foreign-key checks and index entries, as any insert has.
INSERT INTO notifications (user_id, kind, dedup_key, payload, created_at)
SELECT user_id, kind, dedup_key || '~', payload, created_at
  FROM bench_floor

-- name: stories_table
CREATE TEMP TABLE bench_floor AS SELECT id FROM stories WITH NO DATA

-- name: stories_collect
-- Before the real run: the expired stories it will delete.
INSERT INTO bench_floor SELECT id FROM stories WHERE created_at < %(as_of)s - interval '24 hours'

-- name: stories_write
-- The same stories, views and reactions, deleted in one plain statement (a data-modifying
-- CTE always runs to its end).
WITH views AS (
    DELETE FROM story_views v USING bench_floor f WHERE v.story_id = f.id RETURNING 1
), reactions AS (
    DELETE FROM story_reactions r USING bench_floor f WHERE r.story_id = f.id RETURNING 1
)
DELETE FROM stories s USING bench_floor f WHERE s.id = f.id
