-- The jobs layer grants nothing to Supabase's API roles (see shared/exposure.py and
-- docs/reliability.md, "What the public API can reach").
--
-- One query that returns the statements that close the jobs layer, run after every
-- migration by shared/migrations.py: migrate(). Supabase's default privileges grant anon,
-- authenticated and service_role ALL on every new table, function and sequence in public,
-- so this runs each time, not once. Parameters:
--   %(names)s  the jobs layer's object names (shared.exposure.jobs_layer_names())
--   %(roles)s  the API roles; those that exist on this server are revoked from, with PUBLIC
--   %(job_role)s  the jobs' role, whose own grants are left as they are
--
-- For every jobs-layer object in public:
--   table, view, materialized view, foreign table: REVOKE ALL (column grants go with it)
--   sequence (its own, or one a jobs-layer table owns): REVOKE ALL
--   function, procedure: REVOKE ALL (PUBLIC may EXECUTE a new function by default)
--   table: row-level security on, with one policy that lets the jobs' role use the rows its
--          grants allow (so a GRANT that re-opens the table to anyone else shows no rows)
--   view: security_invoker, so a re-opened view checks the reader's rights on the table
WITH objects AS (
    SELECT c.oid, c.relkind, c.oid::regclass::text AS name, c.relrowsecurity,
           coalesce('security_invoker=true' = ANY (c.reloptions) OR 'security_invoker=on' = ANY (c.reloptions),
                    false) AS invoker
      FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace
       AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND c.relname = ANY (%(names)s::text[])
    UNION
    SELECT s.oid, s.relkind, s.oid::regclass::text, s.relrowsecurity, false
      FROM pg_class t
      JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid
                      AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
      JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
     WHERE t.relnamespace = 'public'::regnamespace
       AND t.relname = ANY (%(names)s::text[])
), revokees AS (
    SELECT string_agg(r, ', ' ORDER BY o) AS list
      FROM (SELECT 'PUBLIC' AS r, 0 AS o
            UNION ALL
            SELECT quote_ident(rolname), 1 FROM pg_roles WHERE rolname = ANY (%(roles)s::text[])) x
)
SELECT 'REVOKE ALL ON ' || CASE WHEN o.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || o.name
       || ' FROM ' || r.list AS statement
  FROM objects o, revokees r
UNION ALL
SELECT 'REVOKE ALL ON ROUTINE ' || p.oid::regprocedure::text || ' FROM ' || r.list
  FROM pg_proc p, revokees r
 WHERE p.pronamespace = 'public'::regnamespace
   AND p.prokind IN ('f', 'p')
   AND p.proname = ANY (%(names)s::text[])
UNION ALL
SELECT 'ALTER TABLE ' || o.name || ' ENABLE ROW LEVEL SECURITY'
  FROM objects o
 WHERE o.relkind IN ('r', 'p') AND NOT o.relrowsecurity
UNION ALL
SELECT 'CREATE POLICY ' || quote_ident(%(job_role)s::text) || ' ON ' || o.name
       || ' TO ' || quote_ident(%(job_role)s::text) || ' USING (true) WITH CHECK (true)'
  FROM objects o
 WHERE o.relkind IN ('r', 'p')
   AND EXISTS (SELECT FROM pg_roles WHERE rolname = %(job_role)s::text)
   AND NOT EXISTS (SELECT FROM pg_policy pol WHERE pol.polrelid = o.oid AND pol.polname = %(job_role)s::text)
UNION ALL
SELECT 'ALTER VIEW ' || o.name || ' SET (security_invoker = true)'
  FROM objects o
 WHERE o.relkind = 'v' AND NOT o.invoker
