-- The cutover from pg_cron and the hand-over of occurrences. See shared/cutover.py.

-- name: pg_cron_installed
SELECT to_regclass('cron.job') IS NOT NULL AS installed

-- name: cron_jobs
-- Every pg_cron job of this database the current user can see (cron.job's row-level
-- security shows a non-superuser only their own). Read before migrating too (doctor).
SELECT jobid, jobname::text AS jobname, schedule, command, database, username::text AS username, active
  FROM cron.job
 WHERE database = current_database()
 ORDER BY jobid

-- name: seconds_into_minute
SELECT extract(epoch FROM clock_timestamp() - date_trunc('minute', clock_timestamp())) AS s

-- name: lock
-- Two cutovers (or a cutover and an undo) at once are serialised; held to commit.
SELECT pg_advisory_xact_lock(%(key)s)

-- name: record
INSERT INTO pg_cron_cutover (registry_job, jobid, jobname, schedule, command, database, username, active, cut_at)
VALUES (%(registry_job)s, %(jobid)s, %(jobname)s, %(schedule)s, %(command)s, %(database)s, %(username)s,
        %(active)s, clock_timestamp())
RETURNING id

-- name: unschedule
SELECT cron.unschedule(%(jobid)s::bigint) AS done

-- name: stamp_cut
-- The last statement before commit: the hand-over is the next minute boundary, which
-- pg_cron (firing on minute boundaries) no longer sees the job at.
UPDATE pg_cron_cutover
   SET cut_at = date_trunc('minute', clock_timestamp()) + interval '1 minute'
 WHERE id = ANY(%(ids)s::bigint[])
RETURNING id, registry_job, jobid, jobname, schedule, command, database, username, active, cut_at, cut_by

-- name: open_records
SELECT id, registry_job, jobid, jobname, schedule, command, database, username, active, cut_at, cut_by
  FROM pg_cron_cutover
 WHERE restored_at IS NULL
 ORDER BY id

-- name: schedule_named
-- Named jobs: cron.schedule_in_database updates a job of that name (and user) if one exists.
SELECT cron.schedule_in_database(%(jobname)s, %(schedule)s, %(command)s, %(database)s,
                                 nullif(%(username)s, current_user::text), %(active)s) AS jobid

-- name: schedule_unnamed
SELECT cron.schedule(%(schedule)s, %(command)s) AS jobid

-- name: alter_unnamed
SELECT cron.alter_job(%(jobid)s::bigint, database => %(database)s,
                      username => nullif(%(username)s, current_user::text), active => %(active)s)

-- name: stamp_restored
-- As for the cutover: pg_cron fires the restored job from the next minute boundary on.
UPDATE pg_cron_cutover
   SET restored_at = date_trunc('minute', clock_timestamp()) + interval '1 minute',
       restored_by = current_user, restored_jobid = r.jobid
  FROM unnest(%(ids)s::bigint[], %(jobids)s::bigint[]) AS r(id, jobid)
 WHERE pg_cron_cutover.id = r.id
RETURNING pg_cron_cutover.id, restored_at, restored_by, restored_jobid

-- name: records
SELECT id, registry_job, jobid, jobname, schedule, command, database, username, active, cut_at, cut_by,
       recorded_at, restored_at, restored_by, restored_jobid
  FROM pg_cron_cutover
 ORDER BY id

-- name: handover
-- Who runs an occurrence of one job: pg_cron's live jobs (through the owner's eyes) and the
-- job's cutover records. One round trip, read by the runner before each scheduled run.
SELECT 'cron' AS kind, jobname, command, active, NULL::timestamptz AS cut_at, NULL::timestamptz AS restored_at
  FROM pg_cron_jobs()
UNION ALL
SELECT 'record', registry_job, NULL, NULL, cut_at, restored_at
  FROM pg_cron_cutover
 WHERE registry_job = ANY(%(jobs)s::text[])
