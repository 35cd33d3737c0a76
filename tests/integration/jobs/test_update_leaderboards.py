"""update-leaderboards: the three leaderboard views refreshed concurrently (a never-populated
view populated first), ranked with ties handled consistently, banned users excluded."""

from __future__ import annotations

import psycopg
import pytest

from shared.db import connect
from tests.factories import make_user, record_activity, rows, run_job, set_streak, utc

AS_OF = utc(2026, 11, 25, 10)  # a Wednesday; its ISO week starts Monday 2026-11-23
VIEWS = ("mv_global_leaderboard", "mv_weekly_leaderboard", "mv_language_leaderboard")


def populated(conn: psycopg.Connection) -> list[tuple]:
    return rows(conn, "SELECT relname, relispopulated FROM pg_class WHERE relname = ANY(%s) ORDER BY relname",
                (list(VIEWS),))


def boards(conn: psycopg.Connection) -> tuple[list, list, list]:
    return (rows(conn, "SELECT user_id, total_xp, rank, position FROM mv_global_leaderboard"
                       " ORDER BY position"),
            rows(conn, "SELECT week_start, user_id, weekly_xp, rank, position FROM mv_weekly_leaderboard"
                       " ORDER BY position"),
            rows(conn, "SELECT language, user_id, total_xp, rank, position FROM mv_language_leaderboard"
                       " ORDER BY language, position"))


def test_never_populated_views_are_populated_and_counted(conn):
    # Given the freshly migrated views (WITH NO DATA) and two users with XP
    assert populated(conn) == [(v, False) for v in sorted(VIEWS)]
    a, b = make_user(conn), make_user(conn)
    record_activity(conn, a, utc(2026, 11, 24, 9), xp=30)
    set_streak(conn, b, 0, total_xp=10)

    summary = run_job(conn, "update-leaderboards", AS_OF)

    assert summary == {"views_refreshed": 3, "global_rows": 2, "weekly_rows": 1, "language_rows": 2}
    assert populated(conn) == [(v, True) for v in sorted(VIEWS)]


def test_global_ties_share_a_rank_and_banned_or_zero_xp_users_are_excluded(conn):
    # Given XP 100, 100, 50, a banned user with 500, a deleted user with 400, an inactive one, and 0 XP
    a, b, c = make_user(conn), make_user(conn), make_user(conn)
    banned = make_user(conn, account_status="banned")
    deleted = make_user(conn, account_status="deleted")
    inactive = make_user(conn, account_status="inactive")
    zero = make_user(conn)
    for user, xp in ((b, 100), (a, 100), (c, 50), (banned, 500), (deleted, 400), (inactive, 70), (zero, 0)):
        set_streak(conn, user, 0, total_xp=xp)

    run_job(conn, "update-leaderboards", AS_OF)

    # Then equal XP means equal rank (1, 1, 3) and position breaks the tie by user id
    assert boards(conn)[0] == [(a, 100, 1, 1), (b, 100, 1, 2), (c, 50, 3, 3)]


def test_weekly_board_counts_only_this_iso_weeks_xp_up_to_as_of_date(conn):
    # Given XP on Sunday before the week, Monday 00:00, Wednesday (as_of's date, after as_of's
    # hour), and Thursday (after as_of's date)
    a, b, c, banned = make_user(conn), make_user(conn), make_user(conn), make_user(conn)
    record_activity(conn, a, utc(2026, 11, 22, 23, 59), xp=1000)   # previous ISO week
    record_activity(conn, a, utc(2026, 11, 23, 0, 0), xp=20)        # Monday: in
    record_activity(conn, a, utc(2026, 11, 25, 22, 0), xp=5)        # as_of's date: in
    record_activity(conn, b, utc(2026, 11, 24, 12), xp=25)          # tie with a: 25
    record_activity(conn, c, utc(2026, 11, 26, 1), xp=999)          # Thursday: after as_of's date
    record_activity(conn, c, utc(2026, 11, 23, 8), xp=10)
    record_activity(conn, banned, utc(2026, 11, 24), xp=300)
    conn.execute("UPDATE users SET account_status = 'banned' WHERE id = %s", (banned,))

    summary = run_job(conn, "update-leaderboards", AS_OF)

    monday = utc(2026, 11, 23).date()
    assert boards(conn)[1] == [(monday, a, 25, 1, 1), (monday, b, 25, 1, 2), (monday, c, 10, 3, 3)]
    assert summary["weekly_rows"] == 3
    assert rows(conn, "SELECT week_start, as_of FROM leaderboard_period") == [(monday, AS_OF)]


def test_on_a_sunday_the_week_is_the_one_that_started_on_monday(conn):
    # Given activity on Monday 2026-11-23 and on Sunday 2026-11-29 (same ISO week)
    a = make_user(conn)
    record_activity(conn, a, utc(2026, 11, 23, 1), xp=7)
    record_activity(conn, a, utc(2026, 11, 29, 23), xp=3)
    record_activity(conn, a, utc(2026, 11, 30, 0), xp=100)   # next Monday: a new week

    run_job(conn, "update-leaderboards", utc(2026, 11, 29, 23, 0))
    assert boards(conn)[1] == [(utc(2026, 11, 23).date(), a, 10, 1, 1)]

    # And at Monday 00:00 the new week starts
    run_job(conn, "update-leaderboards", utc(2026, 11, 30, 0, 0))
    assert boards(conn)[1] == [(utc(2026, 11, 30).date(), a, 100, 1, 1)]


def test_iso_week_across_a_year_end(conn):
    # 2027-01-01 is a Friday: its ISO week started Monday 2026-12-28
    a = make_user(conn)
    record_activity(conn, a, utc(2026, 12, 28, 5), xp=4)
    record_activity(conn, a, utc(2027, 1, 1, 5), xp=6)
    run_job(conn, "update-leaderboards", utc(2027, 1, 1, 12))
    assert boards(conn)[1] == [(utc(2026, 12, 28).date(), a, 10, 1, 1)]


def test_language_board_ranks_within_each_language(conn):
    es1, es2, es3 = (make_user(conn, learning_language="es") for _ in range(3))
    fr1, fr2 = (make_user(conn, learning_language="fr") for _ in range(2))
    es_banned = make_user(conn, learning_language="es", account_status="banned")
    for user, xp in ((es1, 40), (es2, 90), (es3, 40), (fr1, 5), (fr2, 500), (es_banned, 1000)):
        set_streak(conn, user, 0, total_xp=xp)

    summary = run_job(conn, "update-leaderboards", AS_OF)

    assert boards(conn)[2] == [
        ("es", es2, 90, 1, 1), ("es", es1, 40, 2, 2), ("es", es3, 40, 2, 3),
        ("fr", fr2, 500, 1, 1), ("fr", fr1, 5, 2, 2),
    ]
    assert summary == {"views_refreshed": 3, "global_rows": 5, "weekly_rows": 0, "language_rows": 5}


def test_a_later_refresh_picks_up_changes(conn):
    a, b = make_user(conn), make_user(conn)
    set_streak(conn, a, 0, total_xp=10)
    run_job(conn, "update-leaderboards", AS_OF)
    set_streak(conn, b, 0, total_xp=20)
    conn.execute("UPDATE users SET account_status = 'banned' WHERE id = %s", (a,))

    run_job(conn, "update-leaderboards", utc(2026, 11, 25, 11))

    assert boards(conn)[0] == [(b, 20, 1, 1)]


def test_second_run_with_same_as_of_leaves_the_views_identical(conn):
    users = [make_user(conn, learning_language=lang) for lang in ("es", "fr", "es", "de")]
    for i, user in enumerate(users):
        record_activity(conn, user, utc(2026, 11, 24, i), xp=10 * (i % 2 + 1))
    first = run_job(conn, "update-leaderboards", AS_OF)
    before = (boards(conn), rows(conn, "SELECT * FROM leaderboard_period"))

    second = run_job(conn, "update-leaderboards", AS_OF)

    assert second == first
    assert (boards(conn), rows(conn, "SELECT * FROM leaderboard_period")) == before


def test_populated_views_are_refreshed_concurrently_so_readers_are_not_blocked(conn, db_url):
    # Given populated views
    a = make_user(conn)
    set_streak(conn, a, 0, total_xp=10)
    run_job(conn, "update-leaderboards", AS_OF)

    # When a refresh is in progress (its transaction still open)
    refresher = connect(db_url)
    reader = connect(db_url)
    try:
        with refresher.transaction(force_rollback=True):
            refresher.execute("SELECT job_update_leaderboards(%s)", (AS_OF,))
            pid = refresher.info.backend_pid
            modes = rows(reader, "SELECT DISTINCT c.relname, l.mode FROM pg_locks l JOIN pg_class c"
                                 " ON c.oid = l.relation WHERE l.pid = %s AND c.relname = ANY(%s)"
                                 " ORDER BY 1, 2", (pid, list(VIEWS)))
            # Then it holds only locks that let readers in (no ACCESS EXCLUSIVE), and a reader
            # that refuses to wait still reads the board
            assert "AccessExclusiveLock" not in {m for _, m in modes}
            assert {v for v, m in modes if m == "ExclusiveLock"} == set(VIEWS)
            with reader.transaction():
                reader.execute("SET LOCAL lock_timeout = '100ms'")
                assert rows(reader, "SELECT user_id FROM mv_global_leaderboard") == [(a,)]
    finally:
        refresher.close()
        reader.close()


def test_dry_run_leaves_never_populated_views_unpopulated(conn):
    set_streak(conn, make_user(conn), 0, total_xp=10)
    summary = run_job(conn, "update-leaderboards", AS_OF, dry_run=True)
    assert summary["global_rows"] == 1
    assert populated(conn) == [(v, False) for v in sorted(VIEWS)]


def test_guide_call_is_logged(conn):
    set_streak(conn, make_user(conn), 0, total_xp=10)
    summary = conn.execute("SELECT update_leaderboards(%s) AS s", (AS_OF,)).fetchone()["s"]
    assert summary == {"views_refreshed": 3, "global_rows": 1, "weekly_rows": 0, "language_rows": 1}
    assert rows(conn, "SELECT job_name, status, trigger FROM cron_job_logs") == [
        ("update_leaderboards", "succeeded", "sql")]


def test_the_guides_own_refresh_statement_runs(conn):
    # The guide's Optimization Tips: REFRESH MATERIALIZED VIEW CONCURRENTLY mv_global_leaderboard;
    run_job(conn, "update-leaderboards", AS_OF)
    conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_global_leaderboard")


@pytest.mark.parametrize("view", VIEWS)
def test_a_view_emptied_by_a_restore_is_repopulated(conn, view):
    set_streak(conn, make_user(conn), 0, total_xp=10)
    run_job(conn, "update-leaderboards", AS_OF)
    conn.execute(f"REFRESH MATERIALIZED VIEW {view} WITH NO DATA")

    run_job(conn, "update-leaderboards", AS_OF)

    assert populated(conn) == [(v, True) for v in sorted(VIEWS)]
