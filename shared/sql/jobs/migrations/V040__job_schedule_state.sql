-- Job state in the database (shared/schedule_state.py): pause, resume, reschedule and the
-- one buffered occurrence of the buffer_one overlap policy. The runner, the watchdog and
-- jobctl all read it, so a paused job is expected to run by no one, on AWS or locally.

-- The current state, one row per job that ever had one (no row: active, the registry's cron).
CREATE TABLE job_schedule_state (
    job_name       text        PRIMARY KEY,
    paused         boolean     NOT NULL DEFAULT false,
    paused_until   timestamptz,             -- a pause that ends by itself (NULL: until resumed)
    cron           text,                    -- a reschedule's cron (NULL: the registry's)
    pending_as_of  timestamptz,             -- buffer_one: the occurrence waiting for the running one
    changed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    changed_by     text,
    note           text
);

-- Every change, who made it, when and why (the watchdog reads it to know which occurrences
-- fell inside a pause, and on which schedule each occurrence was due).
CREATE TABLE job_schedule_changes (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name      text        NOT NULL,
    action        text        NOT NULL CHECK (action IN ('pause', 'resume', 'reschedule', 'auto-pause')),
    changed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    changed_by    text        NOT NULL,
    note          text,
    paused_until  timestamptz,
    cron          text,
    catch_up      boolean     NOT NULL DEFAULT false  -- resume: the paused occurrences are caught up
);
CREATE INDEX job_schedule_changes_job_idx ON job_schedule_changes (job_name, changed_at, id);

-- The watchdog's catch-up runs carry their own trigger.
ALTER TABLE cron_job_logs DROP CONSTRAINT IF EXISTS cron_job_logs_trigger_check;
ALTER TABLE cron_job_logs ADD CONSTRAINT cron_job_logs_trigger_check
    CHECK (trigger IN ('schedule', 'manual', 'local', 'sql', 'catchup'));

-- The job role (the Lambdas, the watchdog): reads the state, buffers and takes the pending
-- occurrence, and pauses a job after repeated failures; it deletes nothing.
GRANT SELECT, INSERT ON job_schedule_state TO scheduled_jobs_runner;
GRANT UPDATE (paused, paused_until, pending_as_of, changed_at, changed_by, note)
    ON job_schedule_state TO scheduled_jobs_runner;
GRANT SELECT, INSERT ON job_schedule_changes TO scheduled_jobs_runner;
