-- Recording a user's activity: one call keeps user_daily_activity (the per-day rows streaks,
-- the weekly board and the weekly report read), users.last_active_at and
-- user_gamification.total_xp in step. The reference app, the seed and the tests record
-- activity through it; an app that only moves users.last_active_at is covered too (the
-- jobs layer derives the day's row from that, docs/adoption.md).
-- p_user_id has users.id's own type (bigint, uuid, ...), resolved when the file is applied.
CREATE OR REPLACE FUNCTION record_activity(p_user_id users.id%TYPE, p_at timestamptz, p_xp integer DEFAULT 0,
                                           p_messages integer DEFAULT 0, p_stories integer DEFAULT 0)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO user_daily_activity AS a
           (user_id, activity_date, first_active_at, last_active_at, actions, xp_earned, messages_sent, stories_posted)
    VALUES (p_user_id, (p_at AT TIME ZONE 'UTC')::date, p_at, p_at, 1, p_xp, p_messages, p_stories)
    ON CONFLICT (user_id, activity_date) DO UPDATE
       SET first_active_at = least(a.first_active_at, excluded.first_active_at),
           last_active_at  = greatest(a.last_active_at, excluded.last_active_at),
           actions         = a.actions + 1,
           xp_earned       = a.xp_earned + excluded.xp_earned,
           messages_sent   = a.messages_sent + excluded.messages_sent,
           stories_posted  = a.stories_posted + excluded.stories_posted;
    UPDATE users SET last_active_at = greatest(last_active_at, p_at) WHERE id = p_user_id;
    INSERT INTO user_gamification AS g (user_id, total_xp) VALUES (p_user_id, p_xp)
    ON CONFLICT (user_id) DO UPDATE SET total_xp = g.total_xp + excluded.total_xp
    WHERE p_xp <> 0;
$$;
