-- The progress of an occurrence done in bounded batches by user range (update-user-streaks,
-- send-daily-reminders, send-weekly-reports; registry: mode BATCHED, resumable). Each batch
-- is its own transaction and commits its row here together with its work: the last user id
-- done (the cursor) and the occurrence's counts so far. A run stopped by its time budget
-- leaves its committed batches and this row; the next delivery of the occurrence (a Lambda
-- retry, the watchdog's catch-up) starts after the cursor, and its last batch reports the
-- whole occurrence's counts. `done` marks a finished occurrence: delivered again, it does
-- nothing.
--
-- occurrence: what the batches belong to: update-user-streaks' activity day (the streak_days
-- ledger stays its completion watermark); the other two jobs' as_of.
-- Rows are written only by the jobs' work functions (as their owner); the job role has no
-- direct access.
DO $$
DECLARE
    v_user_id  text := (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                         WHERE attrelid = 'users'::regclass AND attname = 'id');
BEGIN
    EXECUTE format($f$
        CREATE TABLE IF NOT EXISTS job_batch_progress (
            job_name        text        NOT NULL,
            occurrence      text        NOT NULL,
            cursor_user_id  %s,                       -- the last user id done (NULL: none yet)
            done            boolean     NOT NULL DEFAULT false,
            batches         integer     NOT NULL DEFAULT 0,
            counts          jsonb       NOT NULL DEFAULT '{}',
            started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (job_name, occurrence)
        )$f$, v_user_id);
END $$;
