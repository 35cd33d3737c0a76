-- The missed-run watchdog's statements. See shared/watchdog.py.

-- name: monitoring_since
-- When this database was first migrated by the system, i.e. its first deploy: occurrences
-- before then were never the system's to run, so they are not "missed".
SELECT min(applied_at) AS since FROM schema_migrations

-- name: logged_occurrences
-- Which of the expected (job, occurrence) pairs left a run row. Any status counts (a
-- failed run is alarmed on as a failure, not as a miss); a run typed by hand in SQL
-- (trigger 'sql') and a dry run do not, since neither stands for the occurrence's run.
SELECT e.job_name, e.as_of
  FROM unnest(%(job_names)s::text[], %(as_ofs)s::timestamptz[]) AS e(job_name, as_of)
 WHERE EXISTS (SELECT 1
                 FROM cron_job_logs l
                WHERE l.job_name = e.job_name
                  AND l.as_of = e.as_of
                  AND l.trigger <> 'sql'
                  AND NOT l.dry_run)
