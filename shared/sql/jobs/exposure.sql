-- What of the jobs layer Supabase's API roles can reach on this database (shared/exposure.py).
-- Parameters: %(names)s the jobs layer's object names, %(roles)s the roles to check (anon,
-- authenticated; PUBLIC when neither exists). One row per object and role with any
-- privilege, plus one per jobs-layer table whose row-level security is off.
WITH roles AS (
    SELECT r AS role FROM unnest(%(roles)s::text[]) AS r
), relations AS (
    SELECT c.oid, c.relkind, c.oid::regclass::text AS name, c.relrowsecurity
      FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace
       AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND c.relname = ANY (%(names)s::text[])
    UNION
    SELECT s.oid, s.relkind, s.oid::regclass::text, s.relrowsecurity
      FROM pg_class t
      JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid
                      AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
      JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
     WHERE t.relnamespace = 'public'::regnamespace
       AND t.relname = ANY (%(names)s::text[])
), reach AS (
    SELECT CASE o.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                          ELSE 'table' END AS kind,
           o.name, r.role,
           array_remove(ARRAY[
               CASE WHEN o.relkind <> 'S' AND has_any_column_privilege(r.role, o.oid, 'SELECT') THEN 'SELECT' END,
               CASE WHEN o.relkind <> 'S' AND has_any_column_privilege(r.role, o.oid, 'INSERT') THEN 'INSERT' END,
               CASE WHEN o.relkind <> 'S' AND has_any_column_privilege(r.role, o.oid, 'UPDATE') THEN 'UPDATE' END,
               CASE WHEN o.relkind <> 'S' AND has_table_privilege(r.role, o.oid, 'DELETE') THEN 'DELETE' END,
               CASE WHEN o.relkind <> 'S' AND has_table_privilege(r.role, o.oid, 'TRUNCATE') THEN 'TRUNCATE' END,
               CASE WHEN o.relkind <> 'S' AND has_table_privilege(r.role, o.oid, 'REFERENCES') THEN 'REFERENCES' END,
               CASE WHEN o.relkind <> 'S' AND has_table_privilege(r.role, o.oid, 'TRIGGER') THEN 'TRIGGER' END,
               CASE WHEN o.relkind = 'S' AND has_sequence_privilege(r.role, o.oid, 'USAGE') THEN 'USAGE' END,
               CASE WHEN o.relkind = 'S' AND has_sequence_privilege(r.role, o.oid, 'SELECT') THEN 'SELECT' END,
               CASE WHEN o.relkind = 'S' AND has_sequence_privilege(r.role, o.oid, 'UPDATE') THEN 'UPDATE' END
           ], NULL) AS privileges,
           'REVOKE ALL ON ' || CASE WHEN o.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || o.name
               || ' FROM PUBLIC, ' || quote_ident(r.role) AS fix
      FROM relations o, roles r
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
           p.oid::regprocedure::text, r.role,
           ARRAY['EXECUTE'],
           'REVOKE ALL ON ROUTINE ' || p.oid::regprocedure::text || ' FROM PUBLIC, ' || quote_ident(r.role)
      FROM pg_proc p, roles r
     WHERE p.pronamespace = 'public'::regnamespace
       AND p.prokind IN ('f', 'p')
       AND p.proname = ANY (%(names)s::text[])
       AND has_function_privilege(r.role, p.oid, 'EXECUTE')
)
SELECT kind, name, role, privileges, fix
  FROM reach
 WHERE cardinality(privileges) > 0
UNION ALL
SELECT 'row-level security off', name, NULL, ARRAY[]::text[],
       'ALTER TABLE ' || name || ' ENABLE ROW LEVEL SECURITY'
  FROM relations
 WHERE relkind IN ('r', 'p') AND NOT relrowsecurity
ORDER BY 2, 3
