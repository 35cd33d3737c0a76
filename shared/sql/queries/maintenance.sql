-- database-maintenance's VACUUM (ANALYZE). See shared/execution.py.

-- name: vacuum_permissions
-- (format() placeholders are doubled: psycopg binds the named parameters.)
-- For each table to vacuum, in the given order: whether this session's user may VACUUM it and,
-- if not, why. Postgres refuses nothing here: VACUUM of a table one may not vacuum only warns
-- and skips it, so the job asks first and reports skipped tables apart from vacuumed ones.
-- Postgres 17+: the MAINTAIN privilege (held by owners, superusers and pg_maintain; granted to
-- the job role by V004). Postgres 15/16: only a superuser, the table's owner, or the
-- database's owner (for a table that is not shared) may vacuum it.
SELECT t.name AS table_name,
       CASE
           WHEN c.oid IS NULL THEN 'no such table'
           WHEN current_setting('server_version_num')::int >= 170000 THEN
               CASE WHEN has_table_privilege(c.oid, 'MAINTAIN') THEN NULL
                    ELSE format('%%s lacks the MAINTAIN privilege on it (granted to scheduled_jobs_runner by '
                                'migration V004)', current_user) END
           WHEN (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
             OR pg_has_role(current_user, c.relowner, 'USAGE')
             OR (NOT c.relisshared AND pg_has_role(current_user, d.datdba, 'USAGE')) THEN NULL
           ELSE format('Postgres %%s lets only the table''s owner (%%s), the database''s owner or a superuser '
                       'vacuum it, and %%s is none of them: give this job the owner''s connection '
                       '(MAINTENANCE_DATABASE_URL; on AWS the stack''s migrationsSecretArn)',
                       current_setting('server_version_num')::int / 10000, pg_get_userbyid(c.relowner), current_user)
       END AS refused
  FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS t(name, n)
  LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
 CROSS JOIN pg_database d
 WHERE d.datname = current_database()
 ORDER BY t.n
