-- send-weekly-reports in bounded batches by user range (issue 15): each batch reads only its
-- own users' week. These indexes key each row by its UTC day, then by the user, so a batch
-- does seven index seeks per index (`day = ANY (the week's seven days) AND user BETWEEN the
-- batch's bounds`) and reads only its users' rows of those days. The work does not grow with
-- the history a table keeps or with the users outside the batch. Before, the week's messages
-- were paired in one transaction that grew with the user count (20 s at 1 M users, ~273 s
-- projected at 10 M against the job's 120 s budget).
--
-- Two are on the app's messages table, one per end of a message: a user's messages sent, and
-- the partners they sent to or received from. Both are partial (not deleted). One is on
-- user_challenge_progress: the completions of a day. Each includes the other columns the job
-- reads, the timestamp too: Postgres reads an expression index without the table (an
-- index-only scan) only when the expression's column is in the index. Without it, each batch
-- fetched its ~130,000 messages received from the table, scattered: 0.48 s of a 1.7 s batch
-- at 1 M users, against 0.02 s index-only.
--
-- Each build blocks writes to its table while it runs (about 10 s per index per 10 million
-- messages on a 2-core machine). On a large live database, build them first by hand with
-- CREATE INDEX CONCURRENTLY under these names and definitions; this migration then skips
-- them (docs/moving-from-pg-cron.md, "The order of the steps", step 2).
CREATE INDEX IF NOT EXISTS messages_sent_by_day_idx
    ON messages (((created_at AT TIME ZONE 'UTC')::date), sender_id) INCLUDE (recipient_id, created_at)
    WHERE is_deleted = false;
CREATE INDEX IF NOT EXISTS messages_received_by_day_idx
    ON messages (((created_at AT TIME ZONE 'UTC')::date), recipient_id) INCLUDE (sender_id, created_at)
    WHERE is_deleted = false;
CREATE INDEX IF NOT EXISTS user_challenge_progress_completed_by_day_idx
    ON user_challenge_progress (((completed_at AT TIME ZONE 'UTC')::date), user_id) INCLUDE (completed_at)
    WHERE status = 'completed';
