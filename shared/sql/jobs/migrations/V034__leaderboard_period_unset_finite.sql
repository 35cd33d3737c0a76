-- V033 marked an unset leaderboard_period with as_of = '-infinity', which clients cannot read
-- as a date-time (psycopg: "timestamp too small"). Use the Unix epoch instead: as old as any
-- as_of will ever be, and readable everywhere. update-leaderboards never moves the period back.
UPDATE leaderboard_period SET as_of = '1970-01-01 00:00:00+00' WHERE as_of = '-infinity';
