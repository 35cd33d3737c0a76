-- Make the guide's streak rollback safe and complete.
--
-- The guide restores a bad update-user-streaks run with
--   UPDATE user_gamification SET current_streak = previous_streak_value WHERE updated_at >= '<run>';
-- A row the job never changed had previous_streak_value NULL, so a row created after the
-- run (a new user) made that statement fail on current_streak's NOT NULL. New rows now
-- start with previous_streak_value = 0 (their streak before any change), and rows that
-- exist keep their current value as the "previous" one, so restoring them changes nothing.
--
-- previous_longest_streak is longest_streak before the job's last change: the old
-- longest cannot be derived from the row alone (longest 5 after 4 -> 5 may or may not
-- have been raised by that run), so the job keeps it, and docs/jobs-a.md restores it.
UPDATE user_gamification SET previous_streak_value = current_streak WHERE previous_streak_value IS NULL;
ALTER TABLE user_gamification
    ALTER COLUMN previous_streak_value SET DEFAULT 0,
    ALTER COLUMN previous_streak_value SET NOT NULL,
    ADD COLUMN previous_longest_streak integer NOT NULL DEFAULT 0;
UPDATE user_gamification SET previous_longest_streak = longest_streak WHERE previous_longest_streak <> longest_streak;
