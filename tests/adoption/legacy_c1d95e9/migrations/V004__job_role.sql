-- The job role: what the Lambdas' database user may do, and nothing more.
--
-- Migrations run as the schema owner. The job Lambdas log in as a user that is a member
-- of scheduled_jobs_runner (NOLOGIN; the operator creates the login user, see
-- docs/reliability.md). The role reads and writes no application table directly: each
-- job's work function job_<name>() runs as its owner (SECURITY DEFINER with a pinned
-- search_path), and the role may only EXECUTE those functions. Those attributes are set
-- in shared/sql/functions/zz_job_role_grants.sql, a repeatable file that sorts last,
-- because CREATE OR REPLACE FUNCTION resets SECURITY DEFINER and SET clauses.
--
-- Roles are cluster-wide and every database of the cluster runs this migration (each
-- test database does), so the role is created only if missing, tolerating a concurrent
-- creator.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scheduled_jobs_runner') THEN
        BEGIN
            CREATE ROLE scheduled_jobs_runner NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created by another database's migration at the same moment
        END;
    END IF;
END $$;

GRANT USAGE ON SCHEMA public TO scheduled_jobs_runner;
-- Postgres 15+ already withholds CREATE on public from PUBLIC; say it for this role too.
REVOKE CREATE ON SCHEMA public FROM scheduled_jobs_runner;

-- The run log (shared/sql/queries/runner.sql): claim and skip rows are inserted, a run's
-- outcome columns are updated; the identity, job name, occurrence and trigger of a row,
-- once written, cannot be changed by the role, and no row can be deleted by it (old rows
-- are pruned by job_database_maintenance(), which runs as the owner).
GRANT SELECT ON cron_job_logs TO scheduled_jobs_runner;
GRANT INSERT (job_name, status, started_at, finished_at, execution_time_ms, error_message, metadata,
              trigger, as_of, request_id, forced, dry_run, deadline_at)
    ON cron_job_logs TO scheduled_jobs_runner;
GRANT UPDATE (status, finished_at, execution_time_ms, error_message, metadata)
    ON cron_job_logs TO scheduled_jobs_runner;

-- The missed-run watchdog (shared/sql/queries/watchdog.sql) runs with the same credentials
-- and needs the time of the first migration, nothing else of schema_migrations.
GRANT SELECT (applied_at) ON schema_migrations TO scheduled_jobs_runner;

-- database-maintenance VACUUMs (ANALYZE) these tables from the runner's own session (VACUUM
-- cannot run inside a function). Postgres 17+ has the MAINTAIN privilege for exactly that
-- (it also allows ANALYZE, REINDEX, CLUSTER, REFRESH MATERIALIZED VIEW and LOCK TABLE on
-- them). Postgres 15 and 16 have no such privilege: only the owner may VACUUM, and VACUUM by
-- anyone else only warns and skips the table (see docs/reliability.md for what to do there).
-- The list is shared.jobs.VACUUM_TABLES; tests/reliability/test_privileges.py checks they match.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON TABLE daily_challenges, user_challenge_progress, challenge_templates, '
                'user_gamification, streak_days, daily_metrics, notifications, stories, story_views, '
                'story_reactions, typing_indicators, user_presence, user_reports, moderation_actions, users, '
                'cron_job_logs TO scheduled_jobs_runner';
    END IF;
END $$;
