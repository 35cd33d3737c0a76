-- The job role's access to the jobs (see V004__job_role.sql and docs/reliability.md).
--
-- Each job's work function job_<name>() and each completion check runs as its owner
-- (SECURITY DEFINER) with a pinned search_path (pg_temp last, so no temporary object can
-- stand in for a table) and TimeZone UTC (so `as_of - interval '7 days'`,
-- make_interval(days => n) and every date cast count UTC days whatever the caller's session
-- TimeZone says: a New York session across a DST change gets exactly a UTC session's
-- result), and only the owner and scheduled_jobs_runner may execute it:
-- EXECUTE is revoked from PUBLIC and from any other grantee (Supabase, for one, grants
-- EXECUTE on new functions to anon and authenticated, which would expose these through
-- its HTTP API).
--
-- This is a repeatable file that sorts after every job file because CREATE OR REPLACE
-- FUNCTION resets SECURITY DEFINER and SET clauses (permissions survive it).
--
-- The completion checks are the registry's completion_check functions; the test
-- tests/reliability/test_privileges.py checks this list against shared/registry.py.
DO $$
DECLARE
    f        regprocedure;
    grantee  text;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
           AND p.prokind = 'f'
           AND (p.proname LIKE 'job\_%' OR p.proname IN ('streaks_done_for'))
    LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = public, pg_temp SET TimeZone = ''UTC''', f);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        FOR grantee IN
            SELECT DISTINCT r.rolname
              FROM pg_proc p, aclexplode(p.proacl) a
              JOIN pg_roles r ON r.oid = a.grantee
             WHERE p.oid = f AND a.grantee <> p.proowner AND r.rolname <> 'scheduled_jobs_runner'
        LOOP
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', f, grantee);
        END LOOP;
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO scheduled_jobs_runner', f);
    END LOOP;
END $$;

-- The migration runner re-applies a repeatable file only when it changes: after editing a
-- job file, bump this revision so the attributes above are put back in the same deploy.
-- revision: 6
