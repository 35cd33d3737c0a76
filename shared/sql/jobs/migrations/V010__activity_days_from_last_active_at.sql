-- Streaks are computed from user_daily_activity (one row per user per UTC day with any
-- activity). The guide's app records activity only by moving users.last_active_at; it never
-- writes these rows. So the jobs layer derives them from what the app already writes, and
-- does not rely on the app remembering to: whenever users.last_active_at moves, the day it
-- moved to gets its row (first and last activity times widened; counts untouched, so an app
-- that also calls record_activity() is never counted twice). Without this every streak
-- would break on the first night after adoption.
--
-- The function runs as its owner (SECURITY DEFINER, pinned search_path): the app's own role
-- needs no privilege on user_daily_activity, and row-level security there does not apply.
CREATE OR REPLACE FUNCTION jobs_activity_day_from_last_active() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO user_daily_activity AS a (user_id, activity_date, first_active_at, last_active_at)
    VALUES (NEW.id, (NEW.last_active_at AT TIME ZONE 'UTC')::date, NEW.last_active_at, NEW.last_active_at)
    ON CONFLICT (user_id, activity_date) DO UPDATE
       SET first_active_at = least(a.first_active_at, excluded.first_active_at),
           last_active_at  = greatest(a.last_active_at, excluded.last_active_at)
     WHERE excluded.first_active_at < a.first_active_at OR excluded.last_active_at > a.last_active_at;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION jobs_activity_day_from_last_active() FROM PUBLIC;

DROP TRIGGER IF EXISTS jobs_activity_day_from_last_active ON users;
CREATE TRIGGER jobs_activity_day_from_last_active
    AFTER UPDATE OF last_active_at ON users
    FOR EACH ROW
    WHEN (NEW.last_active_at IS NOT NULL AND NEW.last_active_at IS DISTINCT FROM OLD.last_active_at)
    EXECUTE FUNCTION jobs_activity_day_from_last_active();

-- Activity before this trigger existed: each user's last_active_at day gets its row if the
-- streak job has not processed that day yet (on adoption its ledger is empty: every user's
-- day; a user active yesterday or today before the migration keeps the streak tonight).
-- Days the streak job has already processed are left as they are.
INSERT INTO user_daily_activity (user_id, activity_date, first_active_at, last_active_at)
SELECT u.id, (u.last_active_at AT TIME ZONE 'UTC')::date, u.last_active_at, u.last_active_at
  FROM users u
 WHERE u.last_active_at IS NOT NULL
   AND (u.last_active_at AT TIME ZONE 'UTC')::date > coalesce((SELECT max(day) FROM streak_days), '-infinity'::date)
ON CONFLICT (user_id, activity_date) DO NOTHING;
