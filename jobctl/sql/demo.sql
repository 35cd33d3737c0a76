-- The demo's app activity, loaded by shared.queries.

-- name: activity
-- One statement per simulated day: about one user in five is active once that day (at an
-- hour of its own), a daily core (every tenth user) and about one in ten of the others,
-- chosen by a hash of (user, day) so the demo is the same every time. Through the app's
-- own record_activity() (per-day activity, last_active_at and XP kept in step).
SELECT count(*) AS active
FROM (
    SELECT record_activity(u.id, %(day_start)s + make_interval(secs => (u.id * 37) %% 86400),
                           (10 + u.id %% 40)::int, (u.id %% 5)::int, 0)
    FROM users u
    WHERE u.account_status = 'active'
      AND (u.id %% 10 = 0 OR abs(hashint8(u.id * 100000 + %(day)s)) %% 100 < 10)
) AS s
