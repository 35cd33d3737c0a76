-- A user marked inactive by cleanup-inactive-accounts who is active again is back in good
-- standing (reminders, weekly reports, leaderboards), whatever path records the activity,
-- without the app having to remember it. Two triggers (jobs-layer objects on app tables,
-- created idempotently), each setting account_status = 'active' and status_changed_at = the
-- time of the activity that brought the user back, for an 'inactive' user whose activity is
-- later than the moment they were marked inactive (status_changed_at; an activity recorded
-- late but older than that leaves them inactive):
--   * users: an update that moves last_active_at (the guide's column; record_activity() and
--     any app write of it), a row-level BEFORE trigger that only fires for such a user;
--   * user_daily_activity: inserted or updated activity rows (one set-based UPDATE per
--     statement over its transition table, so a bulk load costs one join, not a probe per row);
--     it also moves users.last_active_at up to that activity, so the next monthly run, which
--     reads last_active_at, does not mark the user inactive again.
-- The activity trigger's function runs as its owner (SECURITY DEFINER, pinned search_path) so
-- it may update users whatever the app's own role and row-level security allow.

CREATE OR REPLACE FUNCTION jobs_reactivate_on_last_active() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.account_status := 'active';
    NEW.status_changed_at := NEW.last_active_at;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS jobs_reactivate_returning_user ON users;
CREATE TRIGGER jobs_reactivate_returning_user
    BEFORE UPDATE OF last_active_at ON users
    FOR EACH ROW
    WHEN (NEW.account_status = 'inactive'
          AND NEW.last_active_at > coalesce(NEW.status_changed_at, '-infinity'::timestamptz))
    EXECUTE FUNCTION jobs_reactivate_on_last_active();

CREATE OR REPLACE FUNCTION jobs_reactivate_on_activity() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE users u
       SET account_status = 'active', status_changed_at = n.last_active_at,
           last_active_at = greatest(u.last_active_at, n.last_active_at)
      FROM (SELECT user_id, max(last_active_at) AS last_active_at FROM new_activity GROUP BY user_id) n
     WHERE u.id = n.user_id
       AND u.account_status = 'inactive'
       AND n.last_active_at > coalesce(u.status_changed_at, '-infinity'::timestamptz);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION jobs_reactivate_on_activity() FROM PUBLIC;

DROP TRIGGER IF EXISTS jobs_reactivate_on_activity_insert ON user_daily_activity;
CREATE TRIGGER jobs_reactivate_on_activity_insert
    AFTER INSERT ON user_daily_activity
    REFERENCING NEW TABLE AS new_activity
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_reactivate_on_activity();

DROP TRIGGER IF EXISTS jobs_reactivate_on_activity_update ON user_daily_activity;
CREATE TRIGGER jobs_reactivate_on_activity_update
    AFTER UPDATE ON user_daily_activity
    REFERENCING NEW TABLE AS new_activity
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_reactivate_on_activity();
