-- cleanup-inactive-accounts (0 2 1 * *).
-- 'active' users whose last activity (last_active_at, or created_at if never active) is
-- more than p_inactive_days days before p_as_of become 'inactive' at p_as_of. Exactly
-- p_inactive_days days: still active. Nobody is deleted; the app lifts 'inactive' on the
-- user's next activity. Idempotent: an inactive user is no longer 'active'.
CREATE OR REPLACE FUNCTION job_cleanup_inactive_accounts(p_as_of timestamptz, p_inactive_days integer DEFAULT 180)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_cutoff  timestamptz;
    v_marked  bigint;
BEGIN
    IF p_as_of IS NULL OR p_inactive_days IS NULL OR p_inactive_days < 1 THEN
        RAISE EXCEPTION 'cleanup-inactive-accounts: p_as_of must be given and p_inactive_days must be >= 1 (got %)',
            p_inactive_days USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_cutoff := p_as_of - make_interval(days => p_inactive_days);

    -- written as an OR (not coalesce) so the guide's partial index idx_users_last_active serves it
    WITH marked AS (
        UPDATE users
           SET account_status = 'inactive', status_changed_at = p_as_of
         WHERE account_status = 'active'
           AND (last_active_at < v_cutoff OR (last_active_at IS NULL AND created_at < v_cutoff))
        RETURNING 1
    )
    SELECT count(*) INTO v_marked FROM marked;

    RETURN jsonb_build_object('users_marked_inactive', v_marked);
END;
$$;

CREATE OR REPLACE FUNCTION cleanup_inactive_accounts(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('cleanup-inactive-accounts', 'job_cleanup_inactive_accounts($1)', p_as_of)
$$;
