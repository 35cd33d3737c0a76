-- jobctl doctor: read-only looks at the database. See shared/doctor.py.

-- name: server
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       current_database() AS database, current_user AS user_name,
       inet_server_port() AS server_port, pg_backend_pid() AS backend_pid

-- name: backend_pid
SELECT pg_backend_pid() AS backend_pid

-- name: privileges
-- What the current user may do that migrating needs.
SELECT r.rolsuper AS superuser,
       r.rolsuper OR r.rolcreaterole AS create_roles,
       has_schema_privilege('public', 'CREATE') AS create_in_public,
       has_database_privilege(current_database(), 'CREATE') AS create_in_database
  FROM pg_roles r
 WHERE r.rolname = current_user

-- name: maintain_grantable
-- Postgres 17+: the tables database-maintenance vacuums on which the current user may grant
-- MAINTAIN to the jobs' role (the owner may; see V004__job_role.sql).
SELECT t.name, c.oid IS NOT NULL AS present,
       c.oid IS NOT NULL AND has_table_privilege(c.oid, 'MAINTAIN WITH GRANT OPTION') AS grantable
  FROM unnest(%(tables)s::text[]) AS t(name)
  LEFT JOIN pg_class c ON c.oid = to_regclass('public.' || quote_ident(t.name))

-- name: role
SELECT r.rolname, r.rolcanlogin,
       coalesce((SELECT array_agg(m.rolname::text ORDER BY m.rolname)
                   FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member
                  WHERE am.roleid = r.oid), '{}') AS members,
       coalesce((SELECT array_agg(m.rolname::text ORDER BY m.rolname)
                   FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member
                  WHERE am.roleid = r.oid AND m.rolcanlogin), '{}') AS login_members
  FROM pg_roles r
 WHERE r.rolname = %(role)s

-- name: role_grants
-- What the jobs' role may do on the jobs layer: the work functions it may execute, the run log.
SELECT (SELECT array_agg(f ORDER BY f) FROM unnest(%(functions)s::text[]) AS f
         WHERE to_regproc('public.' || f) IS NOT NULL
           AND has_function_privilege(%(role)s, to_regproc('public.' || f), 'EXECUTE')) AS executable,
       to_regclass('public.cron_job_logs') IS NOT NULL
         AND has_table_privilege(%(role)s, 'public.cron_job_logs', 'SELECT') AS reads_log,
       to_regclass('public.cron_job_logs') IS NOT NULL
         AND has_table_privilege(%(role)s, 'public.cron_job_logs', 'INSERT') AS writes_log

-- name: relations
-- The guide's objects by name, whoever created them: the run log, its views, the functions.
SELECT c.relname AS name, CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END AS kind,
       pg_get_userbyid(c.relowner) AS owner,
       (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname = ANY(%(names)s::text[])
 ORDER BY c.relname

-- name: functions
SELECT p.proname AS name, pg_get_function_identity_arguments(p.oid) AS arguments,
       format_type(p.prorettype, NULL) AS returns, pg_get_userbyid(p.proowner) AS owner
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proname = ANY(%(names)s::text[])
 ORDER BY p.proname

-- name: log_rows
SELECT count(*) AS n FROM cron_job_logs

-- name: migrated
SELECT to_regclass('public.schema_migrations') IS NOT NULL AS present

-- name: jobs_layer_versions
-- Versions of the jobs layer applied ('V…'; the app schema's are 'app:…').
SELECT count(*) AS n FROM schema_migrations WHERE version LIKE 'V%%'

-- name: recent_deferrals
-- Scheduled deliveries the runner left to pg_cron lately: the rules fire while pg_cron still does.
SELECT DISTINCT job_name
  FROM cron_job_logs
 WHERE trigger = 'schedule' AND status = 'skipped' AND error_message LIKE 'pg_cron runs occurrence%%'
   AND started_at > now() - interval '2 days'
