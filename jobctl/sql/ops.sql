-- The operator's read-only queries (jobctl logs, stats, status), loaded by shared.queries.
-- Parameters are bound, never formatted into the text.

-- name: logs
-- The run log, newest first; %(job)s and %(failed)s narrow it when set.
SELECT id, job_name, status, trigger, as_of, started_at, execution_time_ms, error_message, metadata,
       forced, dry_run, request_id
FROM cron_job_logs
WHERE (%(job)s::text IS NULL OR job_name = %(job)s::text)
  AND (NOT %(failed)s::boolean OR status = 'failed')
ORDER BY started_at DESC, id DESC
LIMIT %(limit)s

-- name: stats
SELECT * FROM v_cron_job_stats

-- name: last_runs
-- Each job's last run, last success and failures in the last 24 hours.
SELECT DISTINCT ON (job_name) job_name, status AS last_status, started_at AS last_run_at,
       as_of AS last_as_of, trigger AS last_trigger,
       max(started_at) FILTER (WHERE status = 'succeeded') OVER w AS last_success_at,
       count(*) FILTER (WHERE status = 'failed' AND started_at > now() - interval '24 hours')
           OVER w AS failed_24h
FROM cron_job_logs
WINDOW w AS (PARTITION BY job_name)
ORDER BY job_name, started_at DESC, id DESC
