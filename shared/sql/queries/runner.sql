-- The runner's statements against cron_job_logs. See shared/runner.py for the protocol.

-- name: reap_stale
-- A 'running' row past its deadline belongs to a run that died (Lambda timeout, crash,
-- lost connection): close it as failed so it no longer blocks, and say so.
UPDATE cron_job_logs
   SET status = 'failed',
       finished_at = clock_timestamp(),
       execution_time_ms = round((extract(epoch FROM clock_timestamp() - started_at) * 1000)::numeric, 3),
       error_message = 'abandoned: the run left no result by its deadline ' || to_char(deadline_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                       || ' (killed, timed out or cut off); its work was rolled back and the occurrence may be retried',
       metadata = metadata || jsonb_build_object('abandoned', true, 'closed_by_request', %(request_id)s::text)
 WHERE replace(job_name, '_', '-') = %(job_name)s AND status = 'running' AND deadline_at < clock_timestamp()
RETURNING id

-- name: find_success
SELECT id, started_at
  FROM cron_job_logs
 WHERE job_name = %(job_name)s AND as_of = %(as_of)s AND status = 'succeeded'
   AND NOT forced AND NOT dry_run AND trigger <> 'sql'
 LIMIT 1

-- name: claim
-- Take the job's one 'running' slot (the partial unique index). ON CONFLICT waits for a
-- concurrent claim to commit or roll back, so two deliveries can never both get it.
INSERT INTO cron_job_logs (job_name, status, started_at, trigger, as_of, request_id, forced, dry_run,
                           deadline_at, metadata)
VALUES (%(job_name)s, 'running', clock_timestamp(), %(trigger)s, %(as_of)s, %(request_id)s, %(forced)s, %(dry_run)s,
        clock_timestamp() + make_interval(secs => %(deadline_s)s), %(metadata)s)
ON CONFLICT ((replace(job_name, '_', '-'))) WHERE status = 'running' DO NOTHING
RETURNING id, started_at, deadline_at

-- name: find_running
SELECT id, job_name, as_of, request_id, trigger, deadline_at
  FROM cron_job_logs
 WHERE replace(job_name, '_', '-') = %(job_name)s AND status = 'running'

-- name: insert_skipped
INSERT INTO cron_job_logs (job_name, status, started_at, finished_at, execution_time_ms, trigger, as_of,
                           request_id, forced, dry_run, error_message, metadata)
VALUES (%(job_name)s, 'skipped', clock_timestamp(), clock_timestamp(), 0, %(trigger)s, %(as_of)s,
        %(request_id)s, %(forced)s, %(dry_run)s, %(reason)s, %(metadata)s)
RETURNING id

-- name: succeed
-- In the job's own transaction: the work and this row commit together, or neither does.
UPDATE cron_job_logs
   SET status = 'succeeded',
       finished_at = clock_timestamp(),
       execution_time_ms = round((extract(epoch FROM clock_timestamp() - started_at) * 1000)::numeric, 3),
       metadata = metadata || jsonb_build_object('summary', %(summary)s::jsonb)
 WHERE id = %(id)s AND status = 'running'
RETURNING id, execution_time_ms

-- name: close
-- Close a run as failed or skipped (or a dry run as succeeded), after its work ended.
UPDATE cron_job_logs
   SET status = %(status)s,
       finished_at = clock_timestamp(),
       execution_time_ms = round((extract(epoch FROM clock_timestamp() - started_at) * 1000)::numeric, 3),
       error_message = %(error_message)s,
       metadata = metadata || %(metadata)s::jsonb
 WHERE id = %(id)s AND status = 'running'
RETURNING id, execution_time_ms
