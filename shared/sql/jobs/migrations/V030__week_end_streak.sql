-- The streak as it stood at the end of the last Saturday processed, for send-weekly-reports
-- (its payload's current_streak is the streak at the week's end, whichever Sunday-midnight
-- job runs first and however late a retry runs). update-user-streaks writes both columns on
-- the rows it changes when it processes a Saturday; nothing else reads or writes them.
-- Jobs-layer columns on an app table: added idempotently.
ALTER TABLE user_gamification
    ADD COLUMN IF NOT EXISTS week_end_day date,
    ADD COLUMN IF NOT EXISTS week_end_streak integer;
