-- process-moderation-queue (0 * * * *).
-- 1. Window: pending reports created in (p_as_of - 7 days, p_as_of]; a report exactly
--    7 days old is outside. Self-reports (reporter = reported) do not count.
--    A user in the window reported by >= p_min_reporters DISTINCT reporters (the same
--    reporter many times counts once), not staff, not already banned or deleted, is
--    banned at p_as_of; one moderation_actions row records who/why/which reports; those
--    reports become 'actioned' and point at that row.
-- 2. Every pending report created up to p_as_of (any age) against a banned user becomes
--    'resolved' at p_as_of. Reports against staff are never touched.
-- Idempotent: a banned user is no longer a candidate and its reports are no longer pending.
CREATE OR REPLACE FUNCTION job_process_moderation_queue(p_as_of timestamptz, p_min_reporters integer DEFAULT 3)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_from      timestamptz := p_as_of - interval '7 days';
    v_banned    bigint;
    v_actioned  bigint;
    v_resolved  bigint;
BEGIN
    IF p_as_of IS NULL OR p_min_reporters IS NULL OR p_min_reporters < 1 THEN
        RAISE EXCEPTION 'process-moderation-queue: p_as_of must be given and p_min_reporters must be >= 1 (got %)',
            p_min_reporters USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH windowed AS (
        SELECT r.id, r.reporter_id, r.reported_user_id
        FROM user_reports r
        JOIN users u ON u.id = r.reported_user_id
        WHERE r.status = 'pending'
          AND r.created_at > v_from
          AND r.created_at <= p_as_of
          AND r.reporter_id <> r.reported_user_id
          AND u.account_status NOT IN ('banned', 'deleted')
          AND NOT u.is_staff
    ), candidates AS (
        SELECT reported_user_id AS user_id,
               array_agg(id ORDER BY id)      AS report_ids,
               count(DISTINCT reporter_id)::int AS reporters
        FROM windowed
        GROUP BY reported_user_id
        HAVING count(DISTINCT reporter_id) >= p_min_reporters
    ), banned AS (
        UPDATE users u
           SET account_status = 'banned', status_changed_at = p_as_of
          FROM candidates c
         WHERE u.id = c.user_id
        RETURNING u.id
    ), actions AS (
        INSERT INTO moderation_actions (user_id, action, actor, reason, report_ids, distinct_reporters, created_at)
        SELECT c.user_id, 'ban', 'process-moderation-queue',
               format('auto-ban: %s distinct reporters (threshold %s) in %s pending reports from %s to %s',
                      c.reporters, p_min_reporters, cardinality(c.report_ids),
                      to_char(v_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                      to_char(p_as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
               c.report_ids, c.reporters, p_as_of
        FROM candidates c
        JOIN banned b ON b.id = c.user_id
        RETURNING id, report_ids
    ), actioned AS (
        UPDATE user_reports r
           SET status = 'actioned', resolved_at = p_as_of, moderation_action_id = a.id
          FROM actions a
         WHERE r.id = ANY (a.report_ids)
        RETURNING r.id
    )
    SELECT (SELECT count(*) FROM banned), (SELECT count(*) FROM actioned) INTO v_banned, v_actioned;

    -- a separate statement, so it sees the bans just made
    WITH resolved AS (
        UPDATE user_reports r
           SET status = 'resolved', resolved_at = p_as_of
          FROM users u
         WHERE u.id = r.reported_user_id
           AND u.account_status = 'banned'
           AND NOT u.is_staff
           AND r.status = 'pending'
           AND r.created_at <= p_as_of
        RETURNING r.id
    )
    SELECT count(*) INTO v_resolved FROM resolved;

    RETURN jsonb_build_object('users_banned', v_banned, 'reports_actioned', v_actioned,
                              'reports_resolved', v_resolved);
END;
$$;

CREATE OR REPLACE FUNCTION process_moderation_queue(p_as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT logged_run('process-moderation-queue', 'job_process_moderation_queue($1)', p_as_of)
$$;
