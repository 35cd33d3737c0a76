-- The synthetic app, generated set-based in SQL (jobctl/seed.py runs these steps in order,
-- in one transaction). Each step starts with "-- step: <name>".
--
-- Randomness is hash-based, never random(): pg_temp.rnd(key, salt) is a uniform number in
-- [0, 1) from hashint8extended(key, seed * 1000 + salt), so the same inputs give the same rows
-- whatever the plan or the order rows are produced in.
--
-- Parameters: %(n)s users; %(as_of)s; %(today)s = as_of's UTC date; %(w)s = today - 30 (first
-- activity day); %(p_day)s = the last day update-user-streaks has processed before as_of;
-- %(last_reset)s = the day of the last reset-daily-challenges run before as_of;
-- %(prev_inactive)s = the last cleanup-inactive-accounts run before as_of.
-- The state is the app just BEFORE the jobs scheduled at as_of run.

-- step: users_plan
-- One row per user with the hidden attributes the later steps draw from: kind of user
-- ('core' daily users, 'regular' occasional ones, 'dormant'; 'none' for banned/deleted/
-- inactive), daily probability, daily-streak span and the history before the window.
CREATE TEMP TABLE seed_users ON COMMIT DROP AS
WITH b AS (
    SELECT i AS id,
           -- sign-ups over ~400 days, denser recently (a growing app); ids follow time
           %(as_of)s::timestamptz
             - make_interval(secs => 400 * 86400 * power(1.0::float8 - (i - 0.5::float8) / %(n)s, 1.2)) AS created_at,
           pg_temp.rnd(i, 1) AS h_status, pg_temp.rnd(i, 2) AS h_type, pg_temp.rnd(i, 3) AS h_p,
           pg_temp.rnd(i, 4) AS h_a, pg_temp.rnd(i, 5) AS h_b, pg_temp.rnd(i, 6) AS h_c
      FROM generate_series(1, %(n)s::bigint) AS i
), s AS (
    SELECT b.*, b.created_at::date AS created_day,
           greatest(0, %(w)s::date - b.created_at::date) AS days_before_window,
           CASE WHEN h_status < 0.010 THEN 'banned'
                WHEN h_status < 0.015 THEN 'deleted'
                -- only users old enough can have been idle 180 days at the last monthly run
                WHEN h_status < 0.075 AND b.created_at < %(prev_inactive)s - interval '190 days' THEN 'inactive'
                ELSE 'active' END AS status
      FROM b
), t AS (
    SELECT s.*,
           CASE WHEN status <> 'active' THEN 'none'
                WHEN h_type < 0.12 THEN 'core'
                WHEN h_type < 0.64 THEN 'regular'
                ELSE 'dormant' END AS utype,
           CASE WHEN status IN ('banned', 'deleted')
                THEN greatest(created_at, created_at + (%(as_of)s - interval '1 hour' - created_at) * pg_temp.rnd(id, 14))
           END AS banned_at
      FROM s
)
SELECT id, created_at, created_day, status, utype, banned_at,
       status = 'active' AND pg_temp.rnd(id, 7) < 0.002 AS is_staff,
       0.08 + 0.36 * h_p AS p,
       -- core users: daily from core_start (40%% of them since before the window: carry days)
       greatest(created_day, CASE WHEN h_a < 0.4 THEN %(w)s::date
                                  ELSE %(w)s::date + floor((h_a - 0.4) / 0.6 * 30)::int END) AS core_start,
       CASE WHEN h_a < 0.4 AND days_before_window > 0
            THEN least(1 + floor(h_b * 300)::int, days_before_window) ELSE 0 END AS carry,
       -- a tenth of the core lapsed during the window
       CASE WHEN h_c < 0.1 THEN %(w)s::date + floor(h_c * 10 * 29)::int END AS core_end,
       floor(days_before_window * pg_temp.rnd(id, 8)
             * CASE WHEN h_type < 0.12 THEN 40 WHEN h_type < 0.64 THEN 10 ELSE 3 END)::bigint AS hist_xp,
       floor(pg_temp.rnd(id, 9) * least(days_before_window,
             CASE WHEN h_type < 0.12 THEN 90 WHEN h_type < 0.64 THEN 14 ELSE 5 END))::int AS hist_longest,
       -- last activity of a user without any in the window (never used when there is some)
       CASE WHEN status IN ('banned', 'deleted')
                 THEN created_at + (banned_at - created_at) * pg_temp.rnd(id, 15)
            WHEN status = 'inactive'
                 THEN created_at + (%(prev_inactive)s - interval '180 days' - created_at) * pg_temp.rnd(id, 15)
            ELSE greatest(created_at, %(prev_inactive)s - interval '180 days')
                 + (greatest(created_at, %(w)s::timestamptz)
                    - greatest(created_at, %(prev_inactive)s - interval '180 days')) * sqrt(pg_temp.rnd(id, 15))
       END AS idle_last_active
  FROM t;

-- step: activity_plan
-- Who is active on which day (today only up to as_of): core users daily within their span,
-- regular users with their own daily probability, everyone on their sign-up day.
CREATE TEMP TABLE seed_activity ON COMMIT DROP AS
SELECT user_id, activity_date, key, utype, first_active_at,
       least(first_active_at + interval '4 hours' * pg_temp.rnd(key, 22),
             activity_date + interval '1 day' - interval '1 second',
             %(as_of)s::timestamptz) AS last_active_at
  FROM (SELECT u.id AS user_id, u.utype, %(w)s::date + d.o AS activity_date, u.id * 64 + d.o AS key,
               CASE WHEN %(w)s::date + d.o = u.created_day
                    THEN u.created_at + least(interval '30 minutes', %(as_of)s - u.created_at,
                                              (u.created_day + 1)::timestamptz - u.created_at)
                                        * pg_temp.rnd(u.id * 64 + d.o, 20)
                    ELSE (%(w)s::date + d.o) + interval '20 hours' * pg_temp.rnd(u.id * 64 + d.o, 20)
               END AS first_active_at
          FROM seed_users u
         CROSS JOIN generate_series(0, 30) AS d(o)
         WHERE u.status = 'active'
           AND %(w)s::date + d.o >= u.created_day
           AND (   %(w)s::date + d.o = u.created_day
                OR (u.utype = 'core' AND %(w)s::date + d.o BETWEEN u.core_start AND coalesce(u.core_end, %(today)s::date))
                OR pg_temp.rnd(u.id * 64 + d.o, 21)
                   < CASE u.utype WHEN 'regular' THEN u.p WHEN 'core' THEN 0.15 ELSE 0 END)
       ) a
 WHERE first_active_at < %(as_of)s;

-- step: users
INSERT INTO users (id, username, email, native_language, learning_language, account_status,
                   status_changed_at, is_staff, reminders_enabled, weekly_report_opt_out,
                   created_at, last_active_at)
SELECT u.id,
       (ARRAY['ana', 'kenji', 'lea', 'omar', 'sofia', 'li', 'marta', 'yuki', 'paul', 'ines'])
           [1 + floor(10 * pg_temp.rnd(u.id, 16))::int] || '_' || u.id,
       'user' || u.id || '@example.test',
       l.langs[1 + mod(l.li + 1 + floor(7 * pg_temp.rnd(u.id, 11))::int, 8)],
       l.langs[1 + l.li],
       u.status,
       CASE WHEN u.status = 'inactive' THEN
                -- the monthly run that found the user idle for 180 days
                least(%(prev_inactive)s::timestamptz,
                      CASE WHEN u.idle_last_active + interval '180 days'
                                <= date_trunc('month', u.idle_last_active + interval '180 days') + interval '2 hours'
                           THEN date_trunc('month', u.idle_last_active + interval '180 days') + interval '2 hours'
                           ELSE date_trunc('month', u.idle_last_active + interval '180 days') + interval '1 month 2 hours'
                      END)
            ELSE u.banned_at END,
       u.is_staff,
       pg_temp.rnd(u.id, 12) >= 0.10,
       pg_temp.rnd(u.id, 13) < 0.05,
       u.created_at,
       coalesce(a.last_active_at, u.idle_last_active)
  FROM seed_users u
  CROSS JOIN LATERAL (SELECT ARRAY['es', 'en', 'fr', 'de', 'ja', 'ko', 'it', 'pt'] AS langs,
                             floor(8 * power(pg_temp.rnd(u.id, 10), 1.6))::int AS li) l
  LEFT JOIN (SELECT user_id, max(last_active_at) AS last_active_at
               FROM seed_activity GROUP BY user_id) a ON a.user_id = u.id;

-- step: user_daily_activity
-- messages_sent = floor(2m * U + V) has mean m exactly: m (msg_mean) is chosen so that the
-- messages add up to ~10 per user.
INSERT INTO user_daily_activity (user_id, activity_date, first_active_at, last_active_at, actions,
                                 xp_earned, messages_sent, stories_posted)
SELECT user_id, activity_date, first_active_at, last_active_at,
       1 + floor(12 * pg_temp.rnd(key, 24))::int,
       5 + floor(40 * pg_temp.rnd(key, 23))::int + CASE WHEN utype = 'core' THEN 20 ELSE 0 END,
       least(63, floor(2 * %(msg_mean)s * pg_temp.rnd(key, 27) + pg_temp.rnd(key, 28)))::int,
       CASE WHEN pg_temp.rnd(key, 25) < 0.12 THEN 1 + floor(2 * pg_temp.rnd(key, 26))::int ELSE 0 END
  FROM seed_activity;

-- step: streak_runs
-- Runs of consecutive active days up to the last processed day (gaps and islands); a core
-- user's run that starts the window carries the days before it.
CREATE TEMP TABLE seed_runs ON COMMIT DROP AS
SELECT r.user_id, r.run_start, r.run_end,
       r.len + CASE WHEN r.run_start = %(w)s::date THEN u.carry ELSE 0 END AS len
  FROM (SELECT user_id, min(activity_date) AS run_start, max(activity_date) AS run_end, count(*)::int AS len
          FROM (SELECT user_id, activity_date,
                       activity_date - (row_number() OVER (PARTITION BY user_id ORDER BY activity_date))::int AS grp
                  FROM seed_activity
                 WHERE activity_date <= %(p_day)s) s
         GROUP BY user_id, grp) r
  JOIN seed_users u ON u.id = r.user_id;

-- step: user_gamification
-- Exactly what update-user-streaks would have left after processing every day through the
-- last processed day (a row it never changed has previous_streak_value = current_streak).
INSERT INTO user_gamification (user_id, current_streak, longest_streak, previous_streak_value,
                               previous_longest_streak, streak_day, total_xp, updated_at)
SELECT u.id, g.current_streak, g.longest_streak,
       coalesce(g.previous_streak_value, g.current_streak),
       CASE WHEN g.current_streak > 0 AND g.current_streak = g.longest_streak
                 AND greatest(coalesce(m.longest_before, 0), u.hist_longest) < g.current_streak
            THEN g.current_streak - 1 ELSE g.longest_streak END,
       g.streak_day,
       u.hist_xp + coalesce(x.xp, 0),
       coalesce(g.streak_day + 1, u.created_at)
  FROM seed_users u
  LEFT JOIN (SELECT DISTINCT ON (user_id) user_id, run_end, len FROM seed_runs
              ORDER BY user_id, run_end DESC) l ON l.user_id = u.id
  LEFT JOIN (SELECT user_id, max(len) AS longest,
                    max(len) FILTER (WHERE run_end < %(p_day)s) AS longest_before
               FROM seed_runs GROUP BY user_id) m ON m.user_id = u.id
  LEFT JOIN (SELECT user_id, sum(xp_earned)::bigint AS xp FROM user_daily_activity GROUP BY user_id) x
         ON x.user_id = u.id
 CROSS JOIN LATERAL (
      SELECT c.current_streak, greatest(c.current_streak, coalesce(m.longest, 0), u.hist_longest) AS longest_streak,
             CASE WHEN l.run_end = %(p_day)s THEN l.len - 1 ELSE l.len END AS previous_streak_value,
             CASE WHEN l.run_end = %(p_day)s THEN l.run_end ELSE l.run_end + 1 END AS streak_day
        FROM (SELECT CASE WHEN l.run_end = %(p_day)s THEN l.len ELSE 0 END AS current_streak) c) g;

-- step: streak_days
-- The streak job's ledger for the days already processed (its watermark).
INSERT INTO streak_days (day, processed_as_of, streaks_incremented, streaks_broken, users_with_streak)
SELECT d.day, d.day + 1, coalesce(a.n, 0), coalesce(b.n, 0), coalesce(a.n, 0)
  FROM (SELECT g::date AS day
          FROM generate_series(%(w)s::date::timestamp, %(p_day)s::date::timestamp, interval '1 day') g) d
  LEFT JOIN (SELECT activity_date, count(*)::int AS n FROM seed_activity GROUP BY activity_date) a
         ON a.activity_date = d.day
  LEFT JOIN (SELECT run_end + 1 AS day, count(*)::int AS n FROM seed_runs
              WHERE run_end < %(p_day)s GROUP BY run_end) b
         ON b.day = d.day AND d.day > %(w)s::date;

-- step: messages
-- Each day's messages_sent, sent within the sender's active hours to one of five partners.
INSERT INTO messages (conversation_id, sender_id, recipient_id, body, created_at, is_deleted)
SELECT least(a.user_id, r.recipient) * 4294967296 + greatest(a.user_id, r.recipient),
       a.user_id, r.recipient,
       (ARRAY['Hola!', 'How do you say this?', 'Thanks for the correction', 'See you tomorrow',
              'Was that right?', 'Nice story!'])[1 + floor(6 * pg_temp.rnd(mk, 32))::int],
       a.first_active_at + (a.last_active_at - a.first_active_at) * pg_temp.rnd(mk, 33),
       pg_temp.rnd(mk, 34) < 0.02
  FROM user_daily_activity a
 CROSS JOIN LATERAL generate_series(1, a.messages_sent) AS k
 CROSS JOIN LATERAL (SELECT (a.user_id * 64 + (a.activity_date - %(w)s::date)) * 64 + k AS mk) m
 CROSS JOIN LATERAL (SELECT 1 + floor(%(n)s * pg_temp.rnd(a.user_id * 8 + floor(5 * pg_temp.rnd(m.mk, 30))::int, 31))::bigint AS raw) p
 CROSS JOIN LATERAL (SELECT CASE WHEN p.raw = a.user_id THEN mod(p.raw, %(n)s) + 1 ELSE p.raw END AS recipient) r;

-- step: recent_users
-- Users active in the last 48 hours, densely numbered so a hash can pick one.
CREATE TEMP TABLE seed_recent ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY id) AS idx, id, created_at
  FROM users
 WHERE account_status = 'active' AND last_active_at >= %(as_of)s - interval '48 hours';

-- step: stories
-- One story per user, posted by recently active users over the last 40 hours: 16 of those
-- hours are past the 24-hour life, so ~40%% are waiting for cleanup-expired-stories.
INSERT INTO stories (id, user_id, media_url, caption, created_at)
SELECT i, r.id, 'https://cdn.example.test/stories/' || i || '.jpg',
       CASE WHEN pg_temp.rnd(i, 41) < 0.6
            THEN (ARRAY['Mi primera frase', 'Practising kanji', 'Café time', 'Guten Morgen!',
                        'New words today'])[1 + floor(5 * pg_temp.rnd(i, 48))::int] END,
       greatest(%(as_of)s - interval '40 hours' * pg_temp.rnd(i, 40), r.created_at)
  FROM generate_series(1, %(n)s::bigint) AS i
  JOIN seed_recent r ON r.idx = 1 + floor(%(recent)s * pg_temp.rnd(i, 42))::bigint;

-- step: story_views
INSERT INTO story_views (story_id, viewer_id, viewed_at)
SELECT s.id, r.id, s.created_at + (%(as_of)s - s.created_at) * pg_temp.rnd(s.id * 8 + k, 45)
  FROM stories s
 CROSS JOIN LATERAL generate_series(1, floor(5 * pg_temp.rnd(s.id, 43))::int) AS k
  JOIN seed_recent r ON r.idx = 1 + mod(floor(%(recent)s * pg_temp.rnd(s.id, 44))::bigint + k * 7919, %(recent)s)
ON CONFLICT DO NOTHING;

-- step: story_reactions
INSERT INTO story_reactions (story_id, user_id, reaction, created_at)
SELECT v.story_id, v.viewer_id,
       (ARRAY['heart', 'laugh', 'clap', 'fire', 'wow'])[1 + floor(5 * pg_temp.rnd(x.k, 47))::int],
       v.viewed_at
  FROM story_views v
 CROSS JOIN LATERAL (SELECT v.story_id * 4194304 + v.viewer_id AS k) x
 WHERE pg_temp.rnd(x.k, 46) < 0.35;

-- step: banned_users
-- The users already banned (by staff), densely numbered.
CREATE TEMP TABLE seed_banned ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY id) AS idx, id, status_changed_at
  FROM users WHERE account_status = 'banned';

-- step: moderation_actions
INSERT INTO moderation_actions (id, user_id, action, actor, reason, created_at)
SELECT idx, id, 'ban', 'staff:trust-and-safety', 'manual review', status_changed_at
  FROM seed_banned;

-- step: user_reports
-- 0.1 report per user over 14 days: 55%% scattered single reports (older ones already
-- dismissed or resolved by staff), 35%% against a few troublemakers (skewed, each reported
-- by a pool of five people, so some reach three distinct reporters and some report twice),
-- 10%% still pending against users who are already banned.
INSERT INTO user_reports (id, reporter_id, reported_user_id, reason, status, created_at, resolved_at)
SELECT j, CASE WHEN reporter = target THEN mod(reporter, %(n)s) + 1 ELSE reporter END, target,
       (ARRAY['spam', 'harassment', 'inappropriate content', 'fake profile', 'off-platform payment'])
           [1 + floor(5 * pg_temp.rnd(j, 61))::int],
       status, created_at,
       CASE WHEN status <> 'pending' THEN created_at + (%(as_of)s - created_at) * 0.5 * pg_temp.rnd(j, 60) END
  FROM (SELECT j, c.created_at,
               CASE WHEN c.kind = 'cluster'
                    THEN 1 + floor(%(n)s * pg_temp.rnd(c.t_idx * 8 + floor(5 * pg_temp.rnd(j, 53))::int, 54))::bigint
                    ELSE 1 + floor(%(n)s * pg_temp.rnd(j, 55))::bigint END AS reporter,
               CASE c.kind WHEN 'cluster' THEN 1 + floor(%(n)s * pg_temp.rnd(c.t_idx, 52))::bigint
                           WHEN 'banned' THEN b.id
                           ELSE 1 + floor(%(n)s * pg_temp.rnd(j, 56))::bigint END AS target,
               CASE WHEN c.kind = 'noise' AND c.created_at < %(as_of)s - interval '2 days'
                    THEN CASE WHEN pg_temp.rnd(j, 59) < 0.6 THEN 'dismissed'
                              WHEN pg_temp.rnd(j, 59) < 0.8 THEN 'resolved'
                              ELSE 'pending' END
                    ELSE 'pending' END AS status
          FROM generate_series(1, %(reports)s::bigint) AS j
         CROSS JOIN LATERAL (
               SELECT CASE WHEN pg_temp.rnd(j, 50) < 0.55 THEN 'noise'
                           WHEN pg_temp.rnd(j, 50) < 0.90 OR %(banned)s = 0 THEN 'cluster'
                           ELSE 'banned' END AS kind,
                      floor(%(troublemakers)s * power(pg_temp.rnd(j, 51), 2))::bigint AS t_idx,
                      %(as_of)s - interval '14 days' * pg_temp.rnd(j, 58) AS created_at) c
          LEFT JOIN seed_banned b
                 ON c.kind = 'banned' AND b.idx = 1 + floor(%(banned)s * pg_temp.rnd(j, 57))::bigint) r;

-- step: challenge_templates
INSERT INTO challenge_templates (id, title, description, target_count, xp_reward, is_enabled, last_used_on)
SELECT i,
       (ARRAY['Send messages', 'Post a story', 'Learn new words', 'Correct a partner', 'Voice chat',
              'Read a story', 'Practise listening', 'Write a paragraph', 'Review flashcards',
              'Find a new partner'])[1 + mod(i - 1, 10)::int] || ' #' || i,
       'A daily challenge from the pool',
       1 + floor(10 * pg_temp.rnd(i, 70))::int,
       10 * (1 + floor(10 * pg_temp.rnd(i, 71))::int),
       pg_temp.rnd(i, 72) >= 0.1,
       CASE WHEN pg_temp.rnd(i, 73) < 0.3 THEN NULL
            ELSE %(today)s::date - 20 - floor(60 * pg_temp.rnd(i, 74))::int END
  FROM generate_series(1, 30) AS i;

-- step: daily_challenges
-- Days today-10 .. today+6. Staff schedule most days; a day they left empty got (in the
-- past) or will get (today onwards) one from the template pool. Today is always scheduled,
-- tomorrow always empty. Statuses follow the last reset run before as_of.
INSERT INTO daily_challenges (id, template_id, title, challenge_date, status, auto_created, created_at,
                              activated_at, archived_at)
SELECT row_number() OVER (ORDER BY c.day), t.id, t.title, c.day,
       CASE WHEN c.day < %(last_reset)s THEN 'archived' WHEN c.day = %(last_reset)s THEN 'active'
            ELSE 'scheduled' END,
       c.auto,
       CASE WHEN c.auto THEN c.day::timestamptz ELSE c.day - interval '7 days' END,
       CASE WHEN c.day <= %(last_reset)s THEN c.day::timestamptz END,
       CASE WHEN c.day < %(last_reset)s THEN c.day + interval '1 day' END
  FROM (SELECT d.day, d.o,
               d.o <> 0 AND d.day <> %(last_reset)s AND pg_temp.rnd(d.o + 100, 75) < 0.25 OR d.o = 1 AS empty,
               d.day <= %(last_reset)s
               AND (d.o <> 0 AND d.day <> %(last_reset)s AND pg_temp.rnd(d.o + 100, 75) < 0.25) AS auto
          FROM (SELECT o, %(today)s::date + o AS day FROM generate_series(-10, 6) AS o) d) c
  JOIN challenge_templates t ON t.id = 1 + floor(30 * pg_temp.rnd(c.o + 100, 76))::int
 WHERE NOT c.empty OR c.auto;

-- step: template_last_used
UPDATE challenge_templates t
   SET last_used_on = u.day
  FROM (SELECT template_id, max(challenge_date) AS day FROM daily_challenges GROUP BY template_id) u
 WHERE u.template_id = t.id;

-- step: user_challenge_progress
-- About 30%% of the users active on a challenge's day took it up; ~40%% of those completed it.
-- Progress left unfinished on an archived challenge was expired by that night's reset.
INSERT INTO user_challenge_progress (user_id, challenge_id, progress, status, started_at, completed_at, closed_at)
SELECT a.user_id, c.id,
       CASE WHEN x.done THEN x.target ELSE floor(x.target * pg_temp.rnd(a.key, 52))::int END,
       CASE WHEN x.done THEN 'completed' WHEN c.status = 'archived' THEN 'expired' ELSE 'in_progress' END,
       a.first_active_at,
       CASE WHEN x.done THEN a.first_active_at + (a.last_active_at - a.first_active_at) * pg_temp.rnd(a.key, 53) END,
       CASE WHEN NOT x.done AND c.status = 'archived' THEN c.archived_at END
  FROM daily_challenges c
  JOIN seed_activity a ON a.activity_date = c.challenge_date
  LEFT JOIN challenge_templates t ON t.id = c.template_id
 CROSS JOIN LATERAL (SELECT pg_temp.rnd(a.key, 51) < 0.4 AS done, coalesce(t.target_count, 3) AS target) x
 WHERE c.status <> 'scheduled' AND pg_temp.rnd(a.key, 50) < 0.3;

-- step: user_presence
-- ~30%% of users have a presence row: a few online now, a few online with a heartbeat
-- older than 15 minutes (for cleanup-expired-sessions), the rest offline.
INSERT INTO user_presence (user_id, is_online, last_heartbeat_at, went_offline_at)
SELECT id, kind <> 'offline', hb, CASE WHEN kind = 'offline' THEN hb + interval '15 minutes' END
  FROM (SELECT u.id,
               CASE WHEN pg_temp.rnd(u.id, 81) < 0.08 THEN 'online'
                    WHEN pg_temp.rnd(u.id, 81) < 0.11 THEN 'stale'
                    ELSE 'offline' END AS kind,
               CASE WHEN pg_temp.rnd(u.id, 81) < 0.08
                    THEN %(as_of)s - interval '14 minutes' * pg_temp.rnd(u.id, 82)
                    WHEN pg_temp.rnd(u.id, 81) < 0.11
                    THEN %(as_of)s - interval '15 minutes 1 second' - interval '45 minutes' * pg_temp.rnd(u.id, 82)
                    ELSE least(u.last_active_at, %(as_of)s - interval '20 minutes') END AS hb
          FROM users u
         WHERE u.account_status = 'active' AND pg_temp.rnd(u.id, 80) < 0.3) p;

-- step: typing_indicators
-- Indicators live ten seconds; most of these started longer ago than that.
INSERT INTO typing_indicators (conversation_id, user_id, started_at, expires_at)
SELECT least(u.id, r.recipient) * 4294967296 + greatest(u.id, r.recipient), u.id, s.started, s.started + interval '10 seconds'
  FROM users u
 CROSS JOIN LATERAL (SELECT 1 + floor(%(n)s * pg_temp.rnd(u.id * 8, 31))::bigint AS raw) p
 CROSS JOIN LATERAL (SELECT CASE WHEN p.raw = u.id THEN mod(p.raw, %(n)s) + 1 ELSE p.raw END AS recipient) r
 CROSS JOIN LATERAL (SELECT %(as_of)s - interval '2 minutes' * pg_temp.rnd(u.id, 91) AS started) s
 WHERE u.account_status = 'active' AND pg_temp.rnd(u.id, 90) < 0.005;
