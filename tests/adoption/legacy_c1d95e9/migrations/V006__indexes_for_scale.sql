-- Indexes the jobs' plans call for at 1,000,000 users (docs/performance.md, jobctl bench).
--
-- 1. Users not in good standing (banned or deleted, ~1.5%): update-user-streaks excludes
--    them from every streak change and count. Without this index each of its statements
--    read all of users to find them; with it, an anti-join against ~15,000 index entries.
CREATE INDEX users_not_in_good_standing_idx ON users (id) WHERE account_status IN ('banned', 'deleted');

-- 2. The guide's idx_messages_created, made covering: send-weekly-reports reads a week of
--    messages (2.6 million at 1 M users) for sender and recipient only, and
--    calculate-daily-metrics counts a day of them; with sender_id and recipient_id in the
--    index both are index-only scans instead of 2.6 million heap fetches. Same name, same
--    key and predicate, so the guide's CREATE INDEX IF NOT EXISTS idx_messages_created stays
--    a no-op.
-- A migration runs in a transaction, where CREATE INDEX CONCURRENTLY is refused: this build
-- blocks message inserts while it runs (~3 s per 10 million messages on a 2-core machine).
DROP INDEX idx_messages_created;
CREATE INDEX idx_messages_created ON messages (created_at) INCLUDE (sender_id, recipient_id) WHERE is_deleted = false;
