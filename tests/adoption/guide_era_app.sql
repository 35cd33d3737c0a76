-- A guide-era app database, shaped the way a Supabase project has it (hand-written fixture).
--
-- The app's own tables, created long ago by the app's own migrations: users keyed by uuid
-- (Supabase keys users by auth.users' uuid), uuid ids elsewhere too, varchar where an older
-- schema tool put it, row-level security on every table with a deny-all policy (the app's
-- own policies, which the jobs layer must leave alone), and a few rows of real data.
-- It lacks what only the jobs write (users.status_changed_at, notifications.dedup_key,
-- user_gamification.streak_day, ...): `jobctl migrate` adds those (docs/adoption.md).
--
-- Pure SQL, no pg_cron: the guide's run log, views and functions are in guide_era_jobs.sql.
-- Apply this file first, then guide_era_jobs.sql.

CREATE TABLE users (
    id                  uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    username            varchar(50)  NOT NULL UNIQUE,
    email               varchar(255) NOT NULL,
    native_language     varchar(10)  NOT NULL DEFAULT 'en',
    learning_language   varchar(10)  NOT NULL DEFAULT 'es',
    account_status      varchar(20)  NOT NULL DEFAULT 'active'
                        CHECK (account_status IN ('active', 'inactive', 'banned', 'deleted')),
    is_staff            boolean      NOT NULL DEFAULT false,
    reminders_enabled   boolean      NOT NULL DEFAULT true,
    avatar_url          text,
    created_at          timestamptz  NOT NULL DEFAULT now(),
    updated_at          timestamptz  NOT NULL DEFAULT now(),
    last_active_at      timestamptz
);
CREATE INDEX IF NOT EXISTS idx_users_last_active ON users (last_active_at) WHERE account_status = 'active';

CREATE TABLE user_gamification (
    user_id                uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    current_streak         integer     NOT NULL DEFAULT 0,
    longest_streak         integer     NOT NULL DEFAULT 0,
    previous_streak_value  integer,
    total_xp               integer     NOT NULL DEFAULT 0,
    level                  integer     NOT NULL DEFAULT 1,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE challenge_templates (
    id            uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    title         varchar(200) NOT NULL,
    description   text         NOT NULL DEFAULT '',
    target_count  integer      NOT NULL DEFAULT 1,
    xp_reward     integer      NOT NULL DEFAULT 10,
    is_enabled    boolean      NOT NULL DEFAULT true
);

CREATE TABLE daily_challenges (
    id              uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    template_id     uuid         REFERENCES challenge_templates (id),
    title           varchar(200) NOT NULL,
    challenge_date  date         NOT NULL,
    status          varchar(20)  NOT NULL DEFAULT 'scheduled'
                    CHECK (status IN ('scheduled', 'active', 'archived')),
    created_at      timestamptz  NOT NULL DEFAULT now(),
    activated_at    timestamptz,
    archived_at     timestamptz
);

CREATE TABLE user_challenge_progress (
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    challenge_id  uuid        NOT NULL REFERENCES daily_challenges (id) ON DELETE CASCADE,
    progress      integer     NOT NULL DEFAULT 0,
    status        varchar(20) NOT NULL DEFAULT 'in_progress'
                  CHECK (status IN ('in_progress', 'completed', 'expired')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (user_id, challenge_id)
);

CREATE TABLE messages (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id  uuid        NOT NULL,
    sender_id        uuid        NOT NULL REFERENCES users (id),
    recipient_id     uuid        NOT NULL REFERENCES users (id),
    content          text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    is_deleted       boolean     NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS idx_messages_created ON messages (created_at) WHERE is_deleted = false;

CREATE TABLE stories (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    media_url   text        NOT NULL DEFAULT '',
    caption     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE story_views (
    story_id   uuid        NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    viewer_id  uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    viewed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (story_id, viewer_id)
);

CREATE TABLE story_reactions (
    story_id    uuid        NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reaction    varchar(16) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (story_id, user_id, reaction)
);

CREATE TABLE typing_indicators (
    conversation_id  uuid        NOT NULL,
    user_id          uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    started_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE TABLE user_presence (
    user_id            uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    is_online          boolean     NOT NULL DEFAULT false,
    last_heartbeat_at  timestamptz NOT NULL
);

CREATE TABLE user_reports (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    reporter_id       uuid        NOT NULL REFERENCES users (id),
    reported_user_id  uuid        NOT NULL REFERENCES users (id),
    reason            text        NOT NULL DEFAULT '',
    status            varchar(20) NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'actioned', 'resolved', 'dismissed')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at       timestamptz
);

CREATE TABLE notifications (
    id          uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        varchar(50)  NOT NULL,
    title       varchar(200),
    payload     jsonb        NOT NULL DEFAULT '{}',
    created_at  timestamptz  NOT NULL DEFAULT now(),
    read_at     timestamptz
);

-- The guide's leaderboard (its Optimization Tips refresh it CONCURRENTLY, so it has a
-- unique index). Derived data: the jobs layer replaces it with its own top-N boards.
CREATE MATERIALIZED VIEW mv_global_leaderboard AS
SELECT g.user_id, u.username, g.total_xp, rank() OVER (ORDER BY g.total_xp DESC) AS rank
  FROM user_gamification g JOIN users u ON u.id = g.user_id
 WHERE u.account_status = 'active';
CREATE UNIQUE INDEX mv_global_leaderboard_user_id ON mv_global_leaderboard (user_id);

-- Row-level security on every app table, with the app's own deny-all policy (Supabase's
-- anon and authenticated roles see nothing of these without a permissive policy).
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY app_deny_all ON %I AS RESTRICTIVE FOR ALL USING (false) WITH CHECK (false)', t);
    END LOOP;
END $$;

-- Real data: 12 users (uuid ids), their gamification rows, a week of messages, stories,
-- reports, challenges, notifications, presence. Fixed uuids for the rows tests refer to.
INSERT INTO users (id, username, email, learning_language, account_status, is_staff, created_at, last_active_at)
SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid,
       'user' || n, 'user' || n || '@example.test',
       (ARRAY['es', 'fr', 'de'])[1 + n % 3],
       CASE WHEN n = 11 THEN 'banned' WHEN n = 12 THEN 'inactive' ELSE 'active' END,
       n = 1,
       '2026-01-01 00:00+00'::timestamptz + make_interval(days => n),
       '2026-11-20 12:00+00'::timestamptz + make_interval(hours => n)
  FROM generate_series(1, 12) n;

INSERT INTO user_gamification (user_id, current_streak, longest_streak, previous_streak_value, total_xp, updated_at)
SELECT id, n % 5, 5 + n % 5, NULL, 100 * n, '2026-11-20 00:00+00'
  FROM (SELECT id, (row_number() OVER (ORDER BY username))::int AS n FROM users) u;

INSERT INTO messages (conversation_id, sender_id, recipient_id, content, created_at)
SELECT '10000000-0000-4000-8000-000000000001', a.id, b.id, 'Hola!',
       '2026-11-14 10:00+00'::timestamptz + make_interval(hours => 7 * k)
  FROM users a JOIN users b ON a.username = 'user1' AND b.username = 'user2'
 CROSS JOIN generate_series(1, 20) k;

INSERT INTO stories (user_id, media_url, created_at)
SELECT id, 'https://example.test/s.jpg', '2026-11-19 08:00+00'::timestamptz + make_interval(hours => n)
  FROM (SELECT id, (row_number() OVER (ORDER BY username))::int AS n FROM users) u;
INSERT INTO story_views (story_id, viewer_id, viewed_at)
SELECT s.id, u.id, s.created_at + interval '1 hour'
  FROM stories s CROSS JOIN users u WHERE u.username IN ('user1', 'user2') AND u.id <> s.user_id;

INSERT INTO challenge_templates (title, description) VALUES ('Say hello in 3 languages', ''), ('Send 5 messages', '');
INSERT INTO daily_challenges (template_id, title, challenge_date, status, activated_at)
SELECT id, title, '2026-11-20', 'active', '2026-11-20 00:00+00' FROM challenge_templates WHERE title LIKE 'Say%';

INSERT INTO user_reports (reporter_id, reported_user_id, reason, created_at)
SELECT r.id, t.id, 'spam', '2026-11-19 09:00+00'
  FROM users r JOIN users t ON t.username = 'user10' AND r.username IN ('user3', 'user4');

INSERT INTO notifications (user_id, kind, title, payload, created_at)
SELECT id, 'welcome', 'Welcome!', '{}', created_at FROM users;

INSERT INTO user_presence (user_id, is_online, last_heartbeat_at)
SELECT id, true, '2026-11-20 11:00+00' FROM users WHERE username IN ('user1', 'user2');
