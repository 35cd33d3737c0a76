"""update-leaderboards: the three leaderboard views refreshed concurrently (a never-populated
view populated first), ranked with ties handled consistently, banned users excluded; each view
holds only the top N of its board (per language on the language board), and leaderboard_rank()
gives any user's rank on read."""

from __future__ import annotations

import dataclasses
import time
from types import MappingProxyType

import psycopg
import pytest

from shared import execution, registry
from shared.db import connect
from tests.factories import make_user, record_activity, rows, run_job, set_streak, utc

AS_OF = utc(2026, 11, 25, 10)  # a Wednesday; its ISO week starts Monday 2026-11-23
VIEWS = ("mv_global_leaderboard", "mv_weekly_leaderboard", "mv_language_leaderboard")


def populated(conn: psycopg.Connection) -> list[tuple]:
    return rows(
        conn, "SELECT relname, relispopulated FROM pg_class WHERE relname = ANY(%s) ORDER BY relname", (list(VIEWS),)
    )


def boards(conn: psycopg.Connection) -> tuple[list, list, list]:
    return (
        rows(conn, "SELECT user_id, total_xp, rank, position FROM mv_global_leaderboard ORDER BY position"),
        rows(
            conn, "SELECT week_start, user_id, weekly_xp, rank, position FROM mv_weekly_leaderboard ORDER BY position"
        ),
        rows(
            conn,
            "SELECT language, user_id, total_xp, rank, position FROM mv_language_leaderboard"
            " ORDER BY language, position",
        ),
    )


def unpopulate(conn: psycopg.Connection) -> None:
    """The views as a restore leaves them (or a database migrated before they were populated)."""
    for view in VIEWS:
        conn.execute(f"REFRESH MATERIALIZED VIEW {view} WITH NO DATA")
    assert populated(conn) == [(v, False) for v in sorted(VIEWS)]


def test_the_views_are_populated_by_the_migration(conn):
    # Given a freshly migrated database, no job ever run
    assert populated(conn) == [(v, True) for v in sorted(VIEWS)]
    # Then the guide's own statement works from the first minute
    conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_global_leaderboard")
    conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_weekly_leaderboard")
    conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_language_leaderboard")


def test_never_populated_views_are_populated_and_counted(conn):
    # Given views never populated (WITH NO DATA) and two users with XP
    unpopulate(conn)
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
    record_activity(conn, a, utc(2026, 11, 22, 23, 59), xp=1000)  # previous ISO week
    record_activity(conn, a, utc(2026, 11, 23, 0, 0), xp=20)  # Monday: in
    record_activity(conn, a, utc(2026, 11, 25, 22, 0), xp=5)  # as_of's date: in
    record_activity(conn, b, utc(2026, 11, 24, 12), xp=25)  # tie with a: 25
    record_activity(conn, c, utc(2026, 11, 26, 1), xp=999)  # Thursday: after as_of's date
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
    record_activity(conn, a, utc(2026, 11, 30, 0), xp=100)  # next Monday: a new week

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
        ("es", es2, 90, 1, 1),
        ("es", es1, 40, 2, 2),
        ("es", es3, 40, 2, 3),
        ("fr", fr2, 500, 1, 1),
        ("fr", fr1, 5, 2, 2),
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
            pid = refresher.execute("SELECT pg_backend_pid() AS p").fetchone()["p"]  # the server's, pooled or not
            modes = rows(
                reader,
                "SELECT DISTINCT c.relname, l.mode FROM pg_locks l JOIN pg_class c"
                " ON c.oid = l.relation WHERE l.pid = %s AND c.relname = ANY(%s)"
                " ORDER BY 1, 2",
                (pid, list(VIEWS)),
            )
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
    unpopulate(conn)
    set_streak(conn, make_user(conn), 0, total_xp=10)
    summary = run_job(conn, "update-leaderboards", AS_OF, dry_run=True)
    assert summary["global_rows"] == 1
    assert populated(conn) == [(v, False) for v in sorted(VIEWS)]


def test_guide_call_is_logged(conn):
    set_streak(conn, make_user(conn), 0, total_xp=10)
    summary = conn.execute("SELECT update_leaderboards(%s) AS s", (AS_OF,)).fetchone()["s"]
    assert summary == {"views_refreshed": 3, "global_rows": 1, "weekly_rows": 0, "language_rows": 1}
    assert rows(conn, "SELECT job_name, status, trigger FROM cron_job_logs") == [
        ("update_leaderboards", "succeeded", "sql")
    ]


def test_the_guides_own_refresh_statement_runs(conn):
    # Given a board the job populated, then XP that changed the order
    a, b = make_user(conn), make_user(conn)
    set_streak(conn, a, 0, total_xp=50)
    set_streak(conn, b, 0, total_xp=10)
    run_job(conn, "update-leaderboards", AS_OF)
    assert boards(conn)[0] == [(a, 50, 1, 1), (b, 10, 2, 2)]
    set_streak(conn, b, 0, total_xp=80)
    # When the guide's Optimization Tips statement runs, as written
    conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_global_leaderboard;")
    # Then the global board shows the new order (and keeps holding at most top N rows)
    assert boards(conn)[0] == [(b, 80, 1, 1), (a, 50, 2, 2)]


@pytest.mark.parametrize("view", VIEWS)
def test_a_view_emptied_by_a_restore_is_repopulated(conn, view):
    set_streak(conn, make_user(conn), 0, total_xp=10)
    run_job(conn, "update-leaderboards", AS_OF)
    conn.execute(f"REFRESH MATERIALIZED VIEW {view} WITH NO DATA")

    run_job(conn, "update-leaderboards", AS_OF)

    assert populated(conn) == [(v, True) for v in sorted(VIEWS)]


# --------------------------------------------------------------------------- top N


def run_with_top_n(conn: psycopg.Connection, top_n: int, as_of=AS_OF) -> dict[str, int]:
    """The job as the runner executes it, with the registry's top_n parameter set to ``top_n``."""
    job = dataclasses.replace(registry.get("update-leaderboards"), params=MappingProxyType({"top_n": top_n}))
    return execution.execute(conn, job, as_of, deadline=time.monotonic() + job.timeout_s)


def test_the_registry_passes_top_n_1000_by_default(conn):
    assert registry.get("update-leaderboards").params == {"top_n": 1000}
    run_job(conn, "update-leaderboards", AS_OF)
    assert rows(conn, "SELECT top_n FROM leaderboard_period") == [(1000,)]


def test_only_the_top_n_rows_are_kept_and_their_ranks_are_the_whole_boards(conn):
    # Given six users on the board, XP 60, 50, 40, 30, 20, 10, and a banned user with 1000
    users = [make_user(conn) for _ in range(6)]
    for user, xp in zip(users, (60, 50, 40, 30, 20, 10), strict=True):
        set_streak(conn, user, 0, total_xp=xp)
    set_streak(conn, make_user(conn, account_status="banned"), 0, total_xp=1000)

    # When the job runs with top_n 3 (the registry parameter, through the runner's execute)
    summary = run_with_top_n(conn, 3)

    # Then only the top 3 are kept (the banned user takes no place), and the counts say so
    assert boards(conn)[0] == [(users[0], 60, 1, 1), (users[1], 50, 2, 2), (users[2], 40, 3, 3)]
    assert summary == {"views_refreshed": 3, "global_rows": 3, "weekly_rows": 0, "language_rows": 3}
    assert rows(conn, "SELECT top_n FROM leaderboard_period") == [(3,)]


def test_ties_at_the_boundary_keep_the_lower_user_ids_with_their_shared_rank(conn):
    # Given XP 90, then 50 for four users (a tie across the boundary at N = 3), then 10
    top, a, b, c, d, low = (make_user(conn) for _ in range(6))
    for user, xp in ((top, 90), (d, 50), (b, 50), (c, 50), (a, 50), (low, 10)):
        set_streak(conn, user, 0, total_xp=xp)

    run_with_top_n(conn, 3)

    # Then the board is cut at position 3: the tied users with the lowest ids, all rank 2
    assert boards(conn)[0] == [(top, 90, 1, 1), (a, 50, 2, 2), (b, 50, 2, 3)]
    # and N = 6 shows the whole tie, the next user ranked after all four (1, 2, 2, 2, 2, 6)
    run_with_top_n(conn, 6)
    assert boards(conn)[0] == [
        (top, 90, 1, 1),
        (a, 50, 2, 2),
        (b, 50, 2, 3),
        (c, 50, 2, 4),
        (d, 50, 2, 5),
        (low, 10, 6, 6),
    ]


def test_the_weekly_board_keeps_its_top_n_of_this_weeks_xp(conn):
    # Given this week's XP 5, 30, 30, 20 (and a banned user's 100, and last week's 500)
    a, b, c, d = (make_user(conn) for _ in range(4))
    banned = make_user(conn, account_status="banned")
    for user, xp in ((a, 5), (b, 30), (c, 30), (d, 20), (banned, 100)):
        record_activity(conn, user, utc(2026, 11, 24, 9), xp=xp)
    record_activity(conn, a, utc(2026, 11, 20, 9), xp=500)

    summary = run_with_top_n(conn, 2)

    monday = utc(2026, 11, 23).date()
    assert boards(conn)[1] == [(monday, b, 30, 1, 1), (monday, c, 30, 1, 2)]
    assert summary["weekly_rows"] == 2


def test_the_language_board_keeps_the_top_n_of_each_language(conn):
    es = [make_user(conn, learning_language="es") for _ in range(4)]
    fr = [make_user(conn, learning_language="fr") for _ in range(2)]
    de = make_user(conn, learning_language="de")
    for user, xp in ((es[0], 10), (es[1], 40), (es[2], 30), (es[3], 40), (fr[0], 7), (fr[1], 8), (de, 1)):
        set_streak(conn, user, 0, total_xp=xp)

    summary = run_with_top_n(conn, 2)

    assert boards(conn)[2] == [
        ("de", de, 1, 1, 1),
        ("es", es[1], 40, 1, 1),
        ("es", es[3], 40, 1, 2),
        ("fr", fr[1], 8, 1, 1),
        ("fr", fr[0], 7, 2, 2),
    ]
    assert summary["language_rows"] == 5


def test_a_smaller_top_n_later_shrinks_the_boards_and_a_repeat_changes_nothing(conn):
    users = [make_user(conn) for _ in range(4)]
    for i, user in enumerate(users):
        set_streak(conn, user, 0, total_xp=100 - i)
    run_with_top_n(conn, 4)
    assert len(boards(conn)[0]) == 4

    run_with_top_n(conn, 2, utc(2026, 11, 25, 11))
    after = boards(conn)
    assert [r[0] for r in after[0]] == users[:2]

    run_with_top_n(conn, 2, utc(2026, 11, 25, 11))
    assert boards(conn) == after


@pytest.mark.parametrize("top_n", [0, -1, None])
def test_a_top_n_below_one_is_refused(conn, top_n):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_top_n must be at least 1"):
        conn.execute("SELECT job_update_leaderboards(p_as_of => %s, p_top_n => %s)", (AS_OF, top_n))


# --------------------------------------------------------------------------- leaderboard_rank()


def my_rank(conn: psycopg.Connection, user: int, as_of=AS_OF) -> list[tuple]:
    return rows(
        conn,
        "SELECT global_rank, weekly_rank, language_rank, total_xp, weekly_xp FROM leaderboard_rank(%s, %s)",
        (user, as_of),
    )


def test_rank_on_read_equals_the_views_rank_inside_the_top_n(conn):
    # Given a mix of XP with ties, two languages, activity this week and before, users off the boards
    langs = ("es", "fr", "es", "es", "fr", "es", "fr", "es")
    users = [make_user(conn, learning_language=lang) for lang in langs]
    for i, (user, xp) in enumerate(zip(users, (50, 50, 40, 70, 40, 10, 5, 50), strict=True)):
        record_activity(conn, user, utc(2026, 11, 20 + i % 5, 9), xp=xp)  # some before Monday 23rd
    for user, status in ((make_user(conn), "banned"), (make_user(conn), "inactive")):
        record_activity(conn, user, utc(2026, 11, 24), xp=60)
        conn.execute("UPDATE users SET account_status = %s WHERE id = %s", (status, user))

    # When the boards are refreshed with a top N that holds everyone
    run_with_top_n(conn, 100)

    # Then each user's rank on read is the view's rank on every board
    global_board, weekly_board, language_board = boards(conn)
    view = {u: [None, None, None] for u in users}
    for user, _, rank, _ in global_board:
        view[user][0] = rank
    for _, user, _, rank, _ in weekly_board:
        view[user][1] = rank
    for _, user, _, rank, _ in language_board:
        view[user][2] = rank
    assert len(weekly_board) > 0
    for user in users:
        assert list(my_rank(conn, user)[0][:3]) == view[user], user


def test_rank_on_read_outside_the_top_n_and_with_ties(conn):
    # Given all-time XP 90, 70, 70, 50, 50, 20 (two in fr), a banned user with 80, this week's XP
    a, b, c, d, e = (make_user(conn, learning_language="es") for _ in range(5))
    f = make_user(conn, learning_language="fr")
    banned = make_user(conn, learning_language="es", account_status="banned")
    for user, xp in ((a, 90), (b, 70), (c, 70), (d, 50), (e, 50), (f, 20), (banned, 80)):
        set_streak(conn, user, 0, total_xp=xp)
    for user, xp in ((e, 9), (f, 9), (d, 3), (a, 12), (banned, 50)):
        record_activity(conn, user, utc(2026, 11, 24, 8), xp=xp)  # adds to total_xp too
    record_activity(conn, c, utc(2026, 11, 21, 8), xp=100)  # last week: c has 170 in all
    # all-time now: c 170, a 102, b 70, e 59, d 53, f 29 (banned 130)
    run_with_top_n(conn, 2)

    # Then ranks outside the top 2 count everyone above them, the banned user not
    assert my_rank(conn, b) == [(3, None, 3, 70, 0)]  # no XP this week: not on the weekly board
    assert my_rank(conn, e) == [(4, 2, 4, 59, 9)]  # weekly 9 ties with f: both rank 2 after a's 12
    assert my_rank(conn, f) == [(6, 2, 1, 29, 9)]  # first of the fr board
    assert my_rank(conn, d) == [(5, 4, 5, 53, 3)]
    # and inside the top 2 they are the views' ranks
    assert my_rank(conn, c) == [(1, None, 1, 170, 0)]
    assert boards(conn)[0] == [(c, 170, 1, 1), (a, 102, 2, 2)]
    assert my_rank(conn, a) == [(2, 1, 2, 102, 12)]


def test_rank_on_read_is_null_off_the_boards_and_no_row_for_an_unknown_user(conn):
    banned = make_user(conn, account_status="banned")
    set_streak(conn, banned, 0, total_xp=500)
    zero = make_user(conn)
    set_streak(conn, zero, 0, total_xp=0)
    no_row = make_user(conn)  # never had a user_gamification row
    assert my_rank(conn, banned) == [(None, None, None, 500, 0)]
    assert my_rank(conn, zero) == [(None, None, None, 0, 0)]
    assert my_rank(conn, no_row) == [(None, None, None, 0, 0)]
    assert my_rank(conn, 10**12) == []


def test_rank_on_read_counts_this_iso_week_up_to_as_of_date(conn):
    a, b = make_user(conn), make_user(conn)
    record_activity(conn, a, utc(2026, 11, 23, 0), xp=10)  # Monday
    record_activity(conn, b, utc(2026, 11, 25, 23), xp=15)  # Wednesday (as_of's date)
    record_activity(conn, b, utc(2026, 11, 26, 1), xp=100)  # Thursday: after as_of's date
    assert my_rank(conn, a)[0][1:] == (2, 2, 10, 10)
    assert my_rank(conn, b)[0][1:] == (1, 1, 115, 15)
    # next Monday, a new week: nobody has weekly XP yet
    assert my_rank(conn, a, utc(2026, 11, 30, 0))[0][1] is None


def test_a_backfill_with_an_older_as_of_never_rewinds_the_weekly_board(conn):
    # Given the board of the week of Monday 11-30, then a missed hour of the week before backfilled
    a = make_user(conn)
    record_activity(conn, a, utc(2026, 11, 24, 8), xp=5)
    record_activity(conn, a, utc(2026, 12, 1, 8), xp=70)
    run_job(conn, "update-leaderboards", utc(2026, 12, 2, 10))
    run_job(conn, "update-leaderboards", AS_OF)  # 2026-11-25 10:00
    # Then the board still shows the latest week processed, with its XP up to date
    assert boards(conn)[1] == [(utc(2026, 11, 30).date(), a, 70, 1, 1)]
    assert rows(conn, "SELECT week_start, as_of FROM leaderboard_period") == [
        (utc(2026, 11, 30).date(), utc(2026, 12, 2, 10))
    ]
