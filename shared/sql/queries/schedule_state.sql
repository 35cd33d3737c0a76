-- Job state: pause, resume, reschedule, the buffered occurrence. See shared/schedule_state.py.

-- name: states
SELECT job_name, paused, paused_until, cron, pending_as_of, changed_at, changed_by, note
  FROM job_schedule_state
 WHERE job_name = ANY(%(job_names)s::text[])

-- name: changes
-- Every change of the given jobs up to a time, oldest first.
SELECT id, job_name, action, changed_at, changed_by, note, paused_until, cron, catch_up
  FROM job_schedule_changes
 WHERE job_name = ANY(%(job_names)s::text[]) AND changed_at <= %(until)s
 ORDER BY job_name, changed_at, id

-- name: record_change
INSERT INTO job_schedule_changes (job_name, action, changed_at, changed_by, note, paused_until, cron, catch_up)
VALUES (%(job_name)s, %(action)s, %(at)s, %(by)s, %(note)s, %(paused_until)s, %(cron)s, %(catch_up)s)
RETURNING id

-- name: set_paused
INSERT INTO job_schedule_state (job_name, paused, paused_until, changed_at, changed_by, note)
VALUES (%(job_name)s, %(paused)s, %(paused_until)s, %(at)s, %(by)s, %(note)s)
ON CONFLICT (job_name) DO UPDATE
   SET paused = excluded.paused, paused_until = excluded.paused_until,
       changed_at = excluded.changed_at, changed_by = excluded.changed_by, note = excluded.note

-- name: auto_pause
-- Pause after repeated failures, unless an operator paused it already (one change, one alarm).
INSERT INTO job_schedule_state (job_name, paused, changed_at, changed_by, note)
VALUES (%(job_name)s, true, %(at)s, %(by)s, %(note)s)
ON CONFLICT (job_name) DO UPDATE
   SET paused = true, paused_until = NULL,
       changed_at = excluded.changed_at, changed_by = excluded.changed_by, note = excluded.note
 WHERE NOT job_schedule_state.paused
    OR (job_schedule_state.paused_until IS NOT NULL AND job_schedule_state.paused_until <= %(at)s)
RETURNING job_name

-- name: set_cron
INSERT INTO job_schedule_state (job_name, cron, changed_at, changed_by, note)
VALUES (%(job_name)s, %(cron)s, %(at)s, %(by)s, %(note)s)
ON CONFLICT (job_name) DO UPDATE
   SET cron = excluded.cron, changed_at = excluded.changed_at, changed_by = excluded.changed_by,
       note = excluded.note

-- name: buffer
-- buffer_one: the occurrence waits for the running one, unless one is already waiting.
INSERT INTO job_schedule_state (job_name, pending_as_of)
VALUES (%(job_name)s, %(as_of)s)
ON CONFLICT (job_name) DO UPDATE
   SET pending_as_of = excluded.pending_as_of
 WHERE job_schedule_state.pending_as_of IS NULL OR job_schedule_state.pending_as_of = excluded.pending_as_of
RETURNING pending_as_of

-- name: take_pending
-- Take the waiting occurrence (one taker wins: the row lock serialises the update).
UPDATE job_schedule_state s
   SET pending_as_of = NULL
  FROM (SELECT job_name, pending_as_of FROM job_schedule_state
         WHERE job_name = %(job_name)s AND pending_as_of IS NOT NULL FOR UPDATE) old
 WHERE s.job_name = old.job_name
RETURNING old.pending_as_of

-- name: failure_streak
-- How many occurrences in a row failed, newest first: a success ends the streak, and so
-- does a resume (an operator who resumes a paused job gives it a fresh count). Skips, dry
-- runs and SQL runs count neither way.
WITH outcomes AS (
    SELECT as_of, status,
           count(*) FILTER (WHERE status = 'succeeded') OVER (ORDER BY id DESC) AS successes_after
      FROM cron_job_logs
     WHERE job_name = %(job_name)s AND status IN ('succeeded', 'failed') AND NOT dry_run AND trigger <> 'sql'
       AND started_at > COALESCE((SELECT max(c.changed_at) FROM job_schedule_changes c
                                   WHERE c.job_name = %(job_name)s AND c.action = 'resume'), '-infinity')
)
SELECT count(DISTINCT as_of) AS failed_occurrences FROM outcomes WHERE successes_after = 0
