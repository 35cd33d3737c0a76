-- jobctl describe and backfill: what the run log says about given occurrences. Loaded by
-- jobctl.healing with shared.queries; parameters are bound.

-- name: occurrence_runs
-- Per (job, occurrence): its runs' statuses, oldest first, and whether one succeeded.
SELECT e.as_of,
       coalesce(array_agg(l.status ORDER BY l.id) FILTER (WHERE l.id IS NOT NULL), '{}') AS statuses,
       coalesce(bool_or(l.status = 'succeeded' AND NOT l.forced), false) AS succeeded,
       (array_agg(l.trigger ORDER BY l.id DESC) FILTER (WHERE l.id IS NOT NULL))[1] AS last_trigger
  FROM unnest(%(as_ofs)s::timestamptz[]) AS e(as_of)
  LEFT JOIN cron_job_logs l
         ON l.job_name = %(job_name)s AND l.as_of = e.as_of AND l.trigger <> 'sql' AND NOT l.dry_run
 GROUP BY e.as_of
 ORDER BY e.as_of
