-- The watchdog's statements. See shared/watchdog.py.

-- name: monitoring_since
-- When this database was first migrated by the system, i.e. its first deploy: occurrences
-- before then were never the system's to run, so they are not "missed".
SELECT min(applied_at) AS since FROM schema_migrations

-- name: occurrence_status
-- For each expected (job, occurrence): is it settled, i.e. did a row stand for its run?
-- A succeeded row does, a running one before its deadline, and a failed one (a failure is
-- alarmed on as a failure, not as a miss), and so does a skip by the overlap policy; a skip
-- or failure that leaves the occurrence still to run does not (metadata.deferred: a buffered
-- overlap, a duplicate of a run that died, a dependency wait, a paused job; a batched run
-- stopped by its budget with its committed batches to resume), nor a run that died
-- (running past its deadline, or closed as abandoned). A run typed by hand in SQL (trigger
-- 'sql') and a dry run never stand for the occurrence's run.
SELECT e.job_name, e.as_of,
       count(l.id) AS logged,
       coalesce(bool_or(l.status = 'succeeded'
                        OR (l.status = 'running' AND l.deadline_at >= clock_timestamp())
                        OR (l.status = 'failed' AND NOT coalesce((l.metadata ->> 'abandoned')::boolean, false)
                            AND NOT l.metadata ? 'deferred')
                        OR (l.status = 'skipped' AND NOT l.metadata ? 'deferred')), false) AS settled
  FROM unnest(%(job_names)s::text[], %(as_ofs)s::timestamptz[]) AS e(job_name, as_of)
  LEFT JOIN cron_job_logs l
         ON l.job_name = e.job_name AND l.as_of = e.as_of AND l.trigger <> 'sql' AND NOT l.dry_run
 GROUP BY e.job_name, e.as_of

-- name: running
-- The jobs with a run in progress (deadline not passed): catch-up waits for them.
SELECT replace(job_name, '_', '-') AS job_name, id, as_of, deadline_at
  FROM cron_job_logs
 WHERE status = 'running' AND deadline_at >= clock_timestamp()
