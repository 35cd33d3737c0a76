"""The synthetic app: deterministic, refuses a non-empty database, and shaped as the jobs need.

Ranges are loose (a small data set is noisy) but each one fails if the seed stopped
producing the situation a job's rule depends on.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from jobctl.databases import drop_database, with_database
from jobctl.seed import SEEDED_TABLES, SeedError, seed
from shared.db import close_quietly, connect
from tests.conftest import create_database_from_template
from tests.factories import rows, utc
from tests.integration.test_idempotency import app_relations, snapshot

N = 2_000
SUNDAY_MIDNIGHT = utc(2026, 11, 1)  # a Sunday, and the 1st of the month
TODAY = SUNDAY_MIDNIGHT.date()


@pytest.fixture
def other_conn(admin_url, template_db):
    """A second fresh migrated database."""
    name = create_database_from_template(admin_url, template_db)
    connection = connect(with_database(admin_url, name))
    yield connection
    close_quietly(connection)
    drop_database(admin_url, name)


@pytest.fixture
def seeded(conn) -> psycopg.Connection:
    seed(conn, users=N, as_of=SUNDAY_MIDNIGHT)
    return conn


def one(conn: psycopg.Connection, query: str, params=None):
    row = conn.execute(query, params).fetchone()
    return next(iter(row.values()))


def tables_only(conn: psycopg.Connection) -> list[str]:
    return [r for r in app_relations(conn) if not r.startswith("mv_")]


def test_same_seed_gives_identical_databases_and_another_seed_does_not(conn, other_conn):
    counts = seed(conn, users=N, as_of=SUNDAY_MIDNIGHT, seed=7)
    assert seed(other_conn, users=N, as_of=SUNDAY_MIDNIGHT, seed=7) == counts

    assert snapshot(conn, tables_only(conn)) == snapshot(other_conn, tables_only(other_conn))

    # a different seed is a different app of the same size
    seed(other_conn, users=N, as_of=SUNDAY_MIDNIGHT, seed=8, replace=True)
    assert one(other_conn, "SELECT count(*) FROM users") == N
    assert rows(conn, "SELECT sender_id, recipient_id FROM messages ORDER BY id LIMIT 50") != rows(
        other_conn, "SELECT sender_id, recipient_id FROM messages ORDER BY id LIMIT 50"
    )


def test_refuses_a_database_that_has_users_unless_replace(seeded):
    before = snapshot(seeded, tables_only(seeded))
    with pytest.raises(SeedError, match="already has users"):
        seed(seeded, users=N, as_of=SUNDAY_MIDNIGHT)
    assert snapshot(seeded, tables_only(seeded)) == before  # untouched

    # replace empties the app tables first (identities restart): the same inputs, the same rows
    seed(seeded, users=N, as_of=SUNDAY_MIDNIGHT, replace=True)
    assert snapshot(seeded, tables_only(seeded)) == before


def test_rejects_bad_arguments(conn):
    with pytest.raises(SeedError, match="at least"):
        seed(conn, users=3, as_of=SUNDAY_MIDNIGHT)
    with pytest.raises(SeedError, match="timezone"):
        seed(conn, users=N, as_of=SUNDAY_MIDNIGHT.replace(tzinfo=None))
    assert one(conn, "SELECT count(*) FROM users") == 0


def test_returns_the_row_count_of_every_seeded_table(conn):
    counts = seed(conn, users=N, as_of=SUNDAY_MIDNIGHT)
    assert set(counts) == set(SEEDED_TABLES)
    for table, count in counts.items():
        assert count > 0, table
        assert one(conn, f"SELECT count(*) FROM {table}") == count, table


def test_every_foreign_key_holds(seeded):
    # the seed skips per-row FK triggers when it may, so check every constraint here
    fks = seeded.execute(
        """SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent,
                  array_agg(a.attname ORDER BY k.i) AS cols, array_agg(b.attname ORDER BY k.i) AS refs
             FROM pg_constraint c
             CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(ck, fk, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.ck
             JOIN pg_attribute b ON b.attrelid = c.confrelid AND b.attnum = k.fk
            WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
            GROUP BY c.oid, c.conrelid, c.confrelid"""
    ).fetchall()
    assert len(fks) >= 15
    for fk in fks:
        match = " AND ".join(f"p.{r} = c.{col}" for col, r in zip(fk["cols"], fk["refs"], strict=True))
        present = " AND ".join(f"c.{col} IS NOT NULL" for col in fk["cols"])
        orphans = one(
            seeded,
            f"SELECT count(*) FROM {fk['child']} c WHERE {present} "
            f"AND NOT EXISTS (SELECT 1 FROM {fk['parent']} p WHERE {match})",
        )
        assert orphans == 0, f"{fk['child']}{fk['cols']} -> {fk['parent']}"


def test_users_have_the_mix_of_a_real_app(seeded):
    share = dict(rows(seeded, "SELECT account_status, count(*)::float / %s FROM users GROUP BY 1", (N,)))
    assert 0.004 <= share["banned"] <= 0.02
    assert 0.001 <= share["deleted"] <= 0.012
    assert 0.01 <= share["inactive"] <= 0.05
    assert 0.9 <= share["active"] <= 0.98
    assert 1 <= one(seeded, "SELECT count(*) FROM users WHERE is_staff") <= 12
    assert one(seeded, "SELECT count(*) FROM users WHERE is_staff AND account_status <> 'active'") == 0
    assert 0.86 <= one(seeded, "SELECT avg(reminders_enabled::int)::float FROM users") <= 0.94
    assert 0.03 <= one(seeded, "SELECT avg(weekly_report_opt_out::int)::float FROM users") <= 0.07
    assert one(seeded, "SELECT count(DISTINCT learning_language) FROM users") == 8
    assert one(seeded, "SELECT count(*) FROM users WHERE learning_language = native_language") == 0
    # sign-ups over ~400 days, yesterday's included, none in the future
    first, last = rows(seeded, "SELECT min(created_at), max(created_at) FROM users")[0]
    assert SUNDAY_MIDNIGHT - timedelta(days=401) <= first <= SUNDAY_MIDNIGHT - timedelta(days=390)
    assert last < SUNDAY_MIDNIGHT
    assert one(seeded, "SELECT count(*) FROM users WHERE created_at >= %s - interval '1 day'", (SUNDAY_MIDNIGHT,)) >= 3


def test_activity_is_skewed_and_last_active_at_follows_it(seeded):
    per_day = [r[0] / N for r in rows(seeded, "SELECT count(*) FROM user_daily_activity GROUP BY activity_date")]
    assert len(per_day) == 30  # the 30 days before as_of (midnight: nothing today yet)
    assert all(0.14 <= d <= 0.27 for d in per_day), per_day
    # a daily core (active all 30 days) and many occasional users (1 to 5 days)
    days = dict(
        rows(
            seeded,
            """SELECT CASE WHEN n = 30 THEN 'daily' WHEN n <= 5 THEN 'occasional' ELSE 'other' END,
                                       count(*)::float / %s
                                  FROM (SELECT count(*) AS n FROM user_daily_activity GROUP BY user_id) a
                                 GROUP BY 1""",
            (N,),
        )
    )
    assert 0.02 <= days["daily"] <= 0.10
    assert days["occasional"] >= 0.15
    assert (
        one(
            seeded,
            """SELECT count(*) FROM user_daily_activity
                           WHERE NOT (first_active_at <= last_active_at
                                      AND (first_active_at AT TIME ZONE 'UTC')::date = activity_date
                                      AND (last_active_at AT TIME ZONE 'UTC')::date = activity_date
                                      AND last_active_at <= %s)""",
            (SUNDAY_MIDNIGHT,),
        )
        == 0
    )
    # users.last_active_at is the latest activity; without recent activity, older than the window
    assert (
        one(
            seeded,
            """SELECT count(*) FROM users u
                           JOIN (SELECT user_id, max(last_active_at) AS m FROM user_daily_activity GROUP BY 1) a
                             ON a.user_id = u.id
                          WHERE u.last_active_at IS DISTINCT FROM a.m""",
        )
        == 0
    )
    assert (
        one(
            seeded,
            """SELECT count(*) FROM users u
                          WHERE NOT EXISTS (SELECT 1 FROM user_daily_activity a WHERE a.user_id = u.id)
                            AND NOT (u.last_active_at < %s - interval '30 days'
                                     OR u.account_status IN ('banned', 'deleted'))
                       """,
            (SUNDAY_MIDNIGHT,),
        )
        == 0
    )
    assert one(seeded, "SELECT count(*) FROM users WHERE last_active_at IS NULL OR last_active_at < created_at") == 0
    # active users past 180 days idle for cleanup-inactive-accounts, none idle before its last run
    assert (
        one(
            seeded,
            """SELECT count(*) FROM users WHERE account_status = 'active'
                           AND last_active_at < %s - interval '180 days'""",
            (SUNDAY_MIDNIGHT,),
        )
        >= 5
    )
    assert (
        one(
            seeded,
            """SELECT count(*) FROM users WHERE account_status = 'active'
                           AND last_active_at < timestamptz '2026-10-01 02:00+00' - interval '180 days'""",
        )
        == 0
    )


def test_streaks_are_those_the_streak_job_would_have_left(seeded):
    processed = TODAY - timedelta(days=2)  # at Sunday 00:00 the job has not yet done Saturday
    assert one(seeded, "SELECT max(day) FROM streak_days") == processed
    assert one(seeded, "SELECT count(*) FROM streak_days") == 29
    # exactly the users active on the last processed day hold a streak
    assert rows(seeded, "SELECT user_id FROM user_gamification WHERE current_streak > 0 ORDER BY 1") == rows(
        seeded, "SELECT user_id FROM user_daily_activity WHERE activity_date = %s ORDER BY 1", (processed,)
    )
    # a streak of k days means k active days in a row (within the window)
    assert (
        one(
            seeded,
            """SELECT count(*) FROM user_gamification g
                           WHERE g.current_streak BETWEEN 1 AND 29
                             AND (SELECT count(*) FROM user_daily_activity a WHERE a.user_id = g.user_id
                                     AND a.activity_date > %(p)s::date - g.current_streak AND a.activity_date <= %(p)s)
                                 <> g.current_streak""",
            {"p": processed},
        )
        == 0
    )
    assert one(seeded, "SELECT count(*) FROM user_gamification WHERE current_streak >= 7") >= 50
    assert one(seeded, "SELECT count(*) FROM user_gamification WHERE current_streak > 30") >= 10  # pre-window history
    assert one(seeded, "SELECT count(*) FROM user_gamification WHERE longest_streak < current_streak") == 0
    assert one(seeded, "SELECT max(streaks_broken) FROM streak_days") > 0
    assert (
        one(
            seeded,
            """SELECT count(*) FROM user_gamification
                           WHERE current_streak > 0
                             AND (streak_day <> %s OR previous_streak_value <> current_streak - 1)""",
            (processed,),
        )
        == 0
    )
    # the total XP includes the window's XP
    assert (
        one(
            seeded,
            """SELECT count(*) FROM user_gamification g
                           WHERE g.total_xp < (SELECT coalesce(sum(xp_earned), 0) FROM user_daily_activity a
                                                WHERE a.user_id = g.user_id)""",
        )
        == 0
    )


def test_messages_ten_per_user_between_pairs_within_the_senders_day(seeded):
    assert 9 * N <= one(seeded, "SELECT count(*) FROM messages") <= 11 * N
    assert 0.01 <= one(seeded, "SELECT avg(is_deleted::int)::float FROM messages") <= 0.03
    assert (
        one(
            seeded,
            """SELECT count(*) FROM messages WHERE sender_id = recipient_id
                              OR conversation_id <> least(sender_id, recipient_id) * 4294967296
                                                    + greatest(sender_id, recipient_id)""",
        )
        == 0
    )
    # each day's messages_sent is exactly the messages sent that day
    assert (
        one(
            seeded,
            """SELECT count(*)
                            FROM (SELECT sender_id, (created_at AT TIME ZONE 'UTC')::date AS d, count(*) AS n
                                    FROM messages GROUP BY 1, 2) m
                           FULL JOIN (SELECT * FROM user_daily_activity WHERE messages_sent > 0) a
                             ON a.user_id = m.sender_id AND a.activity_date = m.d
                          WHERE m.n IS DISTINCT FROM a.messages_sent""",
        )
        == 0
    )


def test_stories_one_per_user_about_forty_percent_expired_with_views(seeded):
    assert one(seeded, "SELECT count(*) FROM stories") == N
    expired = one(
        seeded, "SELECT avg((created_at < %s - interval '24 hours')::int)::float FROM stories", (SUNDAY_MIDNIGHT,)
    )
    assert 0.34 <= expired <= 0.46
    assert one(seeded, "SELECT min(created_at) FROM stories") >= SUNDAY_MIDNIGHT - timedelta(hours=40)
    assert 1.0 <= one(seeded, "SELECT count(*)::float / %s FROM story_views", (N,)) <= 3.0
    assert one(seeded, "SELECT count(*) FROM story_reactions") > 0
    assert (
        one(
            seeded,
            "SELECT count(*) FROM story_views v JOIN stories s ON s.id = v.story_id "
            "WHERE v.viewed_at < s.created_at OR v.viewed_at > %s",
            (SUNDAY_MIDNIGHT,),
        )
        == 0
    )


def test_reports_make_work_for_the_moderation_queue(seeded):
    assert one(seeded, "SELECT count(*) FROM user_reports") == N // 10
    assert one(seeded, "SELECT min(created_at) FROM user_reports") >= SUNDAY_MIDNIGHT - timedelta(days=14)
    # users reported by >= 3 distinct people within 7 days, still pending: the job bans them
    reported = rows(
        seeded,
        """SELECT reported_user_id, count(DISTINCT reporter_id) FROM user_reports
                                WHERE status = 'pending' AND created_at >= %s - interval '7 days'
                                GROUP BY 1 HAVING count(DISTINCT reporter_id) >= 3""",
        (SUNDAY_MIDNIGHT,),
    )
    assert len(reported) >= 2
    # ... and others with only two (left alone), one reporter reporting the same user twice,
    # pending reports against users already banned (the job resolves them)
    assert (
        one(
            seeded,
            """SELECT count(*) FROM (SELECT reported_user_id FROM user_reports WHERE status = 'pending'
                            GROUP BY 1 HAVING count(DISTINCT reporter_id) = 2) x""",
        )
        >= 1
    )
    assert (
        one(
            seeded,
            """SELECT count(*) FROM (SELECT 1 FROM user_reports GROUP BY reporter_id, reported_user_id
                                                HAVING count(*) > 1) x""",
        )
        >= 1
    )
    assert (
        one(
            seeded,
            """SELECT count(*) FROM user_reports r JOIN users u ON u.id = r.reported_user_id
                           WHERE u.account_status = 'banned' AND r.status = 'pending'""",
        )
        >= 5
    )
    assert one(seeded, "SELECT count(*) FROM user_reports WHERE reporter_id = reported_user_id") == 0
    assert one(seeded, "SELECT count(*) FROM moderation_actions") == one(
        seeded, "SELECT count(*) FROM users WHERE account_status = 'banned'"
    )


def test_challenges_yesterday_active_today_scheduled_and_a_day_without(seeded):
    by_day = dict(rows(seeded, "SELECT challenge_date, status FROM daily_challenges"))
    assert by_day[TODAY - timedelta(days=1)] == "active"
    assert by_day[TODAY] == "scheduled"
    assert TODAY + timedelta(days=1) not in by_day  # reset-daily-challenges will use the template pool
    assert all(s == "archived" for d, s in by_day.items() if d < TODAY - timedelta(days=1))
    assert one(seeded, "SELECT count(*) FROM challenge_templates") == 30
    assert one(seeded, "SELECT count(*) FROM challenge_templates WHERE is_enabled") >= 20
    progress = dict(
        rows(
            seeded,
            """SELECT p.status || '/' || c.status, count(*) FROM user_challenge_progress p
                                     JOIN daily_challenges c ON c.id = p.challenge_id GROUP BY 1""",
        )
    )
    assert progress["in_progress/active"] > 0  # reset-daily-challenges expires these
    assert progress["completed/archived"] > 0 and progress["expired/archived"] > 0
    assert "in_progress/archived" not in progress
    assert (
        one(
            seeded,
            "SELECT count(*) FROM user_challenge_progress WHERE status = 'completed' "
            "AND (completed_at IS NULL OR completed_at > %s)",
            (SUNDAY_MIDNIGHT,),
        )
        == 0
    )


def test_presence_and_typing_have_stale_rows_for_the_session_cleanup(seeded):
    assert 0.2 * N <= one(seeded, "SELECT count(*) FROM user_presence") <= 0.4 * N
    stale = "last_heartbeat_at < %s - interval '15 minutes'"
    assert one(seeded, f"SELECT count(*) FROM user_presence WHERE is_online AND {stale}", (SUNDAY_MIDNIGHT,)) >= 3
    assert one(seeded, f"SELECT count(*) FROM user_presence WHERE is_online AND NOT {stale}", (SUNDAY_MIDNIGHT,)) >= 10
    assert one(seeded, "SELECT count(*) FROM typing_indicators WHERE expires_at < %s", (SUNDAY_MIDNIGHT,)) >= 1


def test_at_six_pm_the_midnight_jobs_have_already_run(conn):
    # Given the app at 18:00 on the same Sunday
    evening = SUNDAY_MIDNIGHT + timedelta(hours=18)
    seed(conn, users=N, as_of=evening)
    # Then today's challenge is active, the streak ledger covers yesterday, people were active today
    assert dict(rows(conn, "SELECT challenge_date, status FROM daily_challenges"))[TODAY] == "active"
    assert one(conn, "SELECT max(day) FROM streak_days") == TODAY - timedelta(days=1)
    today_active = one(conn, "SELECT count(*) FROM user_daily_activity WHERE activity_date = %s", (TODAY,))
    assert 0.08 * N <= today_active <= 0.25 * N
    assert one(conn, "SELECT max(last_active_at) FROM user_daily_activity") <= evening
    # and streak holders not yet active today: send-daily-reminders has work
    assert (
        one(
            conn,
            """SELECT count(*) FROM user_gamification g WHERE g.current_streak > 0
                         AND NOT EXISTS (SELECT 1 FROM user_daily_activity a
                                          WHERE a.user_id = g.user_id AND a.activity_date = %s)""",
            (TODAY,),
        )
        >= 20
    )
