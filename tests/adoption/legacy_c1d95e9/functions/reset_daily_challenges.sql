-- reset-daily-challenges (0 0 * * *). Today T is p_as_of's UTC date.
-- 1. Every 'active' challenge dated before T is archived (archived_at = p_as_of), and the
--    'in_progress' user progress on those challenges is closed as 'expired' (closed_at = p_as_of).
-- 2. Every 'scheduled' challenge dated T becomes 'active' (activated_at = p_as_of).
-- 3. If no challenge at all exists for T, one is created from the enabled template pool:
--    the least recently used template (last_used_on NULLS FIRST, then id), 'active',
--    auto_created; that template's last_used_on becomes T. The partial unique index
--    daily_challenges_one_auto_per_day makes a concurrent second creation a no-op.
-- Idempotent: a second run finds nothing active in the past, nothing scheduled for T and
-- a challenge for T, so it changes no row and reports zeros.
CREATE OR REPLACE FUNCTION job_reset_daily_challenges(p_as_of timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_today      date;
    v_archived   bigint;
    v_expired    bigint;
    v_activated  bigint;
    v_created    bigint;
BEGIN
    IF p_as_of IS NULL THEN
        RAISE EXCEPTION 'reset-daily-challenges: p_as_of must be given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_today := (p_as_of AT TIME ZONE 'UTC')::date;

    WITH archived AS (
        UPDATE daily_challenges
           SET status = 'archived', archived_at = p_as_of
         WHERE status = 'active' AND challenge_date < v_today
        RETURNING id
    ), expired AS (
        UPDATE user_challenge_progress p
           SET status = 'expired', closed_at = p_as_of
          FROM archived a
         WHERE p.challenge_id = a.id AND p.status = 'in_progress'
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM archived), (SELECT count(*) FROM expired) INTO v_archived, v_expired;

    WITH activated AS (
        UPDATE daily_challenges
           SET status = 'active', activated_at = p_as_of
         WHERE status = 'scheduled' AND challenge_date = v_today
        RETURNING 1
    )
    SELECT count(*) INTO v_activated FROM activated;

    WITH pick AS (
        SELECT t.id, t.title
          FROM challenge_templates t
         WHERE t.is_enabled
           AND NOT EXISTS (SELECT 1 FROM daily_challenges c WHERE c.challenge_date = v_today)
         ORDER BY t.last_used_on ASC NULLS FIRST, t.id
         LIMIT 1
           FOR UPDATE
    ), created AS (
        INSERT INTO daily_challenges (template_id, title, challenge_date, status, auto_created, created_at, activated_at)
        SELECT id, title, v_today, 'active', true, p_as_of, p_as_of FROM pick
        ON CONFLICT (challenge_date) WHERE auto_created DO NOTHING
        RETURNING template_id
    ), used AS (
        UPDATE challenge_templates t
           SET last_used_on = v_today
          FROM created c
         WHERE t.id = c.template_id
        RETURNING 1
    )
    SELECT count(*) INTO v_created FROM created;

    RETURN jsonb_build_object(
        'challenges_archived', v_archived,
        'progress_expired', v_expired,
        'challenges_activated', v_activated,
        'challenges_created', v_created);
END;
$$;

CREATE OR REPLACE FUNCTION reset_daily_challenges(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('reset-daily-challenges', 'job_reset_daily_challenges($1)', p_as_of)
$$;
