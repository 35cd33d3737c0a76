-- What the guide's setup script (scripts/013_scheduled_jobs_system.sql) left in a guide-era
-- database, hand-written as the guide describes it: a run log of its own older shape with
-- months of history, the guide's two views, and one SQL function per job that logs under
-- the job's name and returns void (two of them take other arguments or return other types).
--
-- Pure SQL, no pg_cron: scheduling these functions with cron.schedule is a separate step
-- (the cutover tests do it). Apply after guide_era_app.sql.

CREATE TABLE cron_job_logs (
    id                 uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    job_name           varchar(100) NOT NULL,
    status             varchar(20)  NOT NULL DEFAULT 'running'
                       CHECK (status IN ('running', 'success', 'failed')),
    started_at         timestamptz  NOT NULL DEFAULT now(),
    completed_at       timestamptz,
    execution_time_ms  integer,
    error_message      text,
    metadata           jsonb        DEFAULT '{}'::jsonb,
    created_at         timestamptz  DEFAULT now()
);
CREATE INDEX idx_cron_job_logs_job_name ON cron_job_logs (job_name);
CREATE INDEX idx_cron_job_logs_started_at ON cron_job_logs (started_at DESC);
CREATE INDEX idx_cron_job_logs_status ON cron_job_logs (status);
ALTER TABLE cron_job_logs ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE VIEW v_recent_cron_jobs AS
SELECT * FROM cron_job_logs ORDER BY started_at DESC LIMIT 100;

CREATE OR REPLACE VIEW v_cron_job_stats AS
SELECT job_name,
       COUNT(*)                                           AS total_runs,
       COUNT(*) FILTER (WHERE status = 'success')         AS successful_runs,
       COUNT(*) FILTER (WHERE status = 'failed')          AS failed_runs,
       ROUND(AVG(execution_time_ms), 2)                   AS avg_execution_time_ms,
       MAX(started_at)                                    AS last_run_at
  FROM cron_job_logs
 GROUP BY job_name
 ORDER BY job_name;

-- The guide's logging helpers.
CREATE OR REPLACE FUNCTION log_cron_job_start(p_job_name text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO cron_job_logs (job_name, status) VALUES (p_job_name, 'running') RETURNING id INTO v_id;
    RETURN v_id;
END $$;

CREATE OR REPLACE FUNCTION log_cron_job_end(p_id uuid, p_status text, p_error text DEFAULT NULL,
                                            p_metadata jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cron_job_logs
       SET status = p_status, completed_at = now(), error_message = p_error, metadata = p_metadata,
           execution_time_ms = (EXTRACT(EPOCH FROM (now() - started_at)) * 1000)::integer
     WHERE id = p_id;
END $$;

-- One function per job, as the guide's job table names them.
CREATE OR REPLACE FUNCTION reset_daily_challenges() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('reset-daily-challenges');
BEGIN
    UPDATE daily_challenges SET status = 'archived', archived_at = now()
     WHERE status = 'active' AND challenge_date < CURRENT_DATE;
    UPDATE daily_challenges SET status = 'active', activated_at = now()
     WHERE status = 'scheduled' AND challenge_date = CURRENT_DATE;
    PERFORM log_cron_job_end(v_id, 'success');
EXCEPTION WHEN OTHERS THEN
    PERFORM log_cron_job_end(v_id, 'failed', SQLERRM);
END $$;

CREATE OR REPLACE FUNCTION update_user_streaks() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('update-user-streaks');
BEGIN
    UPDATE user_gamification g
       SET previous_streak_value = g.current_streak,
           current_streak = CASE WHEN u.last_active_at >= CURRENT_DATE - 1 THEN g.current_streak + 1 ELSE 0 END,
           updated_at = now()
      FROM users u WHERE u.id = g.user_id;
    PERFORM log_cron_job_end(v_id, 'success');
END $$;

-- An argument with a default and another return type (CREATE OR REPLACE cannot change either).
CREATE OR REPLACE FUNCTION calculate_daily_metrics(target_date date DEFAULT CURRENT_DATE - 1)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('calculate-daily-metrics');
BEGIN
    PERFORM log_cron_job_end(v_id, 'success', NULL, jsonb_build_object('date', target_date));
    RETURN 1;
END $$;

CREATE OR REPLACE FUNCTION send_daily_reminders() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('send-daily-reminders');
BEGIN
    PERFORM log_cron_job_end(v_id, 'success');
END $$;

CREATE OR REPLACE FUNCTION cleanup_expired_stories() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('cleanup-expired-stories');
BEGIN
    DELETE FROM stories WHERE created_at < now() - interval '24 hours';
    PERFORM log_cron_job_end(v_id, 'success');
END $$;

CREATE OR REPLACE FUNCTION update_leaderboards() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('update-leaderboards');
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY mv_global_leaderboard;
    PERFORM log_cron_job_end(v_id, 'success');
END $$;

CREATE OR REPLACE FUNCTION cleanup_expired_sessions() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('cleanup-expired-sessions');
BEGIN
    DELETE FROM typing_indicators WHERE expires_at < now();
    PERFORM log_cron_job_end(v_id, 'success');
END $$;

CREATE OR REPLACE FUNCTION process_moderation_queue() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('process-moderation-queue');
BEGIN
    PERFORM log_cron_job_end(v_id, 'success');
END $$;

CREATE OR REPLACE FUNCTION send_weekly_reports() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('send-weekly-reports');
BEGIN
    PERFORM log_cron_job_end(v_id, 'success');
END $$;

CREATE OR REPLACE FUNCTION cleanup_inactive_accounts() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('cleanup-inactive-accounts');
BEGIN
    UPDATE users SET account_status = 'inactive'
     WHERE account_status = 'active' AND last_active_at < now() - interval '180 days';
    PERFORM log_cron_job_end(v_id, 'success');
END $$;

CREATE OR REPLACE FUNCTION database_maintenance() RETURNS text LANGUAGE plpgsql AS $$
DECLARE v_id uuid := log_cron_job_start('database-maintenance');
BEGIN
    DELETE FROM cron_job_logs WHERE started_at < now() - interval '90 days';
    PERFORM log_cron_job_end(v_id, 'success');
    RETURN 'ok';
END $$;

-- Months of history: every job at its schedule from 2026-08-01 to 2026-11-20 (about 19,000
-- rows), in the guide's vocabulary: mostly 'success', a failure now and then (with its
-- error), two 'running' rows of runs that never finished, NULL metadata on some rows, and a
-- few hand runs logged under the function's name (SELECT update_user_streaks();).
INSERT INTO cron_job_logs (job_name, status, started_at, completed_at, execution_time_ms, error_message, metadata, created_at)
SELECT j.name,
       CASE WHEN k % 97 = 13 THEN 'failed' ELSE 'success' END,
       t + interval '120 milliseconds',
       t + interval '120 milliseconds' + make_interval(secs => j.ms / 1000.0),
       j.ms,
       CASE WHEN k % 97 = 13 THEN 'canceling statement due to statement timeout' END,
       CASE WHEN k % 5 = 0 THEN NULL ELSE jsonb_build_object('rows', k % 40) END,
       t
  FROM (VALUES ('reset-daily-challenges',    '1 day',      240),
               ('update-user-streaks',       '1 day',      1800),
               ('calculate-daily-metrics',   '1 day',      3100),
               ('send-daily-reminders',      '1 day',      900),
               ('cleanup-expired-stories',   '1 hour',     80),
               ('update-leaderboards',       '1 hour',     5200),
               ('cleanup-expired-sessions',  '15 minutes', 15),
               ('process-moderation-queue',  '1 hour',     60),
               ('send-weekly-reports',       '7 days',     14000),
               ('cleanup-inactive-accounts', '1 month',    700),
               ('database-maintenance',      '1 month',    42000)) AS j(name, step, ms)
 CROSS JOIN LATERAL (
       SELECT t, (row_number() OVER (ORDER BY t))::int AS k
         FROM generate_series(
                CASE j.name WHEN 'calculate-daily-metrics' THEN '2026-08-01 01:00+00'
                            WHEN 'send-daily-reminders' THEN '2026-08-01 18:00+00'
                            WHEN 'send-weekly-reports' THEN '2026-08-02 00:00+00'
                            WHEN 'cleanup-inactive-accounts' THEN '2026-08-01 02:00+00'
                            WHEN 'database-maintenance' THEN '2026-08-01 03:00+00'
                            ELSE '2026-08-01 00:00+00' END::timestamptz,
                '2026-11-20 23:59+00'::timestamptz, j.step::interval) AS t) AS s;

INSERT INTO cron_job_logs (job_name, status, started_at, completed_at, execution_time_ms, error_message, metadata)
VALUES ('update-leaderboards', 'running', '2026-10-03 14:00:00.2+00', NULL, NULL, NULL, NULL),
       ('update-leaderboards', 'running', '2026-11-12 09:00:00.2+00', NULL, NULL, NULL, '{}'),
       ('update_user_streaks', 'success', '2026-11-02 10:31:07+00', '2026-11-02 10:31:09+00', 2012, NULL, '{}'),
       ('reset_daily_challenges', 'failed', '2026-11-03 10:05:00+00', '2026-11-03 10:05:00.4+00', 400,
        'relation "daily_challenge" does not exist', NULL);
