-- The next batch of users of a batched job (update-user-streaks, send-daily-reminders,
-- send-weekly-reports): the first p_size users by id after p_after (from the first when p_after
-- is NULL; every user left when p_size is NULL), as inclusive bounds, and whether it is the
-- last batch (no user is left after it; it then reaches the last user). The job's statements
-- read a plain range, `id BETWEEN first_id AND last_id`, that any plan, generic or custom,
-- serves: no custom plan has to be forced (forcing one for the job's transaction also
-- re-planned the foreign-key check of every row it inserted). Two branches, not `p_after IS
-- NULL OR id > p_after`, so neither plan reads every user; index probes only, no min()/max(),
-- which uuid lacks. Polymorphic in the id's type (bigint, uuid). Only the jobs' functions call
-- it (the lockdown revokes it from PUBLIC).
CREATE OR REPLACE FUNCTION users_batch(p_after anyelement, p_size integer,
                                       OUT first_id anyelement, OUT last_id anyelement, OUT last_batch boolean)
LANGUAGE plpgsql STABLE
SET search_path = public, pg_temp AS $$
BEGIN
    IF p_after IS NULL THEN
        SELECT u.id INTO first_id FROM users u ORDER BY u.id LIMIT 1;
        IF p_size IS NOT NULL THEN
            SELECT u.id INTO last_id FROM users u ORDER BY u.id OFFSET p_size - 1 LIMIT 1;
        END IF;
    ELSE
        SELECT u.id INTO first_id FROM users u WHERE u.id > p_after ORDER BY u.id LIMIT 1;
        IF p_size IS NOT NULL THEN
            SELECT u.id INTO last_id FROM users u WHERE u.id > p_after ORDER BY u.id OFFSET p_size - 1 LIMIT 1;
        END IF;
    END IF;
    last_batch := last_id IS NULL;  -- fewer than p_size users left, or no p_size: take them all
    IF last_batch THEN
        SELECT u.id INTO last_id FROM users u ORDER BY u.id DESC LIMIT 1;
    END IF;
END;
$$;
