-- update-leaderboards never moves leaderboard_period back to an older as_of (a backfill of a
-- past hour must not rewind the weekly board). The row V001 seeded says as_of = the time of
-- the migration, which is no run's as_of: on a database where update-leaderboards has never
-- succeeded, mark it as unset (-infinity), so that the first run, whatever its as_of (a demo
-- or a replay of past days), sets the week.
UPDATE leaderboard_period
   SET as_of = '-infinity'
 WHERE NOT EXISTS (SELECT 1 FROM cron_job_logs
                    WHERE replace(job_name, '_', '-') = 'update-leaderboards' AND status = 'succeeded');
