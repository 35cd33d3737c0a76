-- The cutover from pg_cron (jobctl cutover, shared/cutover.py, docs/moving-from-pg-cron.md).
--
-- One row per pg_cron job the cutover unscheduled: everything `jobctl cutover --undo` needs
-- to schedule it again exactly as it was (name, schedule, command, database, user, active),
-- who cut it over and when, and, once undone, who restored it and when.
--
-- cut_at is the hand-over instant: occurrences before it were pg_cron's to run, those at or
-- after it (until restored_at) are the runner's. It is the first minute boundary after the
-- cutover committed, so pg_cron (which fires on minute boundaries) ran every occurrence
-- before it and none after it. The runner defers to pg_cron for the occurrences pg_cron owns
-- and the missed-run watchdog does not expect them.
CREATE TABLE IF NOT EXISTS pg_cron_cutover (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry_job    text        NOT NULL,   -- the registry job it ran ('reset-daily-challenges')
    jobid           bigint      NOT NULL,   -- cron.job.jobid when it was unscheduled
    jobname         text,                   -- NULL for an unnamed pg_cron job
    schedule        text        NOT NULL,
    command         text        NOT NULL,
    database        text        NOT NULL,
    username        text        NOT NULL,
    active          boolean     NOT NULL,
    cut_at          timestamptz NOT NULL,
    cut_by          text        NOT NULL DEFAULT current_user,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    restored_at     timestamptz,
    restored_by     text,
    restored_jobid  bigint,
    CHECK ((restored_at IS NULL) = (restored_by IS NULL))
);

CREATE INDEX IF NOT EXISTS pg_cron_cutover_job ON pg_cron_cutover (registry_job, cut_at);

-- Ours alone: the jobs' role reads when each job changed hands (the runner and the watchdog
-- ask who owns an occurrence), nothing else; no one else reads it.
REVOKE ALL ON pg_cron_cutover FROM PUBLIC;
GRANT SELECT (registry_job, cut_at, restored_at) ON pg_cron_cutover TO scheduled_jobs_runner;
