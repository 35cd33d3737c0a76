"""process-moderation-queue: users with >= N distinct reporters of pending reports in the
last 7 days are banned with an audit row; reports against banned users are resolved;
staff are never auto-banned."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta
from types import MappingProxyType

import psycopg
import pytest

from shared import execution, registry
from tests.factories import make_user, rows, run_job, utc

AS_OF = utc(2026, 11, 28, 17)
WEEK = timedelta(days=7)
TICK = timedelta(microseconds=1)
EARLIER = utc(2026, 10, 1)
ACTOR = "process-moderation-queue"
REASON_3_OF_3 = (
    "auto-ban: 3 distinct reporters (threshold 3) in {n} pending reports "
    "from 2026-11-21T17:00:00Z to 2026-11-28T17:00:00Z"
)


def report(
    conn: psycopg.Connection, reporter: int, reported: int, created_at: datetime, status: str = "pending"
) -> int:
    return conn.execute(
        "INSERT INTO user_reports (reporter_id, reported_user_id, reason, status, created_at)"
        " VALUES (%s, %s, 'spam', %s, %s) RETURNING id",
        (reporter, reported, status, created_at),
    ).fetchone()["id"]


def reporters(conn: psycopg.Connection, n: int) -> list[int]:
    return [make_user(conn) for _ in range(n)]


def status_of(conn: psycopg.Connection, user_id: int) -> tuple:
    return rows(conn, "SELECT account_status, status_changed_at FROM users WHERE id = %s", (user_id,))[0]


def reports_of(conn: psycopg.Connection, user_id: int) -> list[tuple]:
    return rows(
        conn,
        "SELECT id, status, resolved_at, moderation_action_id FROM user_reports"
        " WHERE reported_user_id = %s ORDER BY id",
        (user_id,),
    )


def actions(conn: psycopg.Connection) -> list[tuple]:
    return rows(
        conn,
        "SELECT id, user_id, action, actor, reason, report_ids, distinct_reporters, created_at"
        " FROM moderation_actions ORDER BY id",
    )


def everything(conn: psycopg.Connection) -> tuple[list, list, list]:
    return (
        rows(conn, "SELECT * FROM users ORDER BY id"),
        rows(conn, "SELECT * FROM user_reports ORDER BY id"),
        rows(conn, "SELECT * FROM moderation_actions ORDER BY id"),
    )


def test_n_distinct_reporters_ban_and_n_minus_1_do_not(conn):
    # Given a user reported by 3 distinct reporters and one reported by 2
    r = reporters(conn, 3)
    bad, almost = make_user(conn), make_user(conn)
    bad_reports = [report(conn, r[i], bad, AS_OF - timedelta(hours=i + 1)) for i in range(3)]
    almost_reports = [report(conn, r[i], almost, AS_OF - timedelta(hours=i + 1)) for i in range(2)]

    summary = run_job(conn, "process-moderation-queue", AS_OF)

    # Then the first is banned at as_of with one audit row naming its reports; the second is untouched
    assert summary == {"users_banned": 1, "reports_actioned": 3, "reports_resolved": 0}
    assert status_of(conn, bad) == ("banned", AS_OF)
    assert status_of(conn, almost) == ("active", None)
    [(action_id, *action)] = actions(conn)
    assert action == [bad, "ban", ACTOR, REASON_3_OF_3.format(n=3), sorted(bad_reports), 3, AS_OF]
    assert reports_of(conn, bad) == [(i, "actioned", AS_OF, action_id) for i in sorted(bad_reports)]
    assert reports_of(conn, almost) == [(i, "pending", None, None) for i in almost_reports]


def test_the_same_reporter_many_times_counts_once(conn):
    # Given one reporter reporting a user five times and a second reporter once: 2 distinct
    r = reporters(conn, 3)
    target = make_user(conn)
    for h in range(5):
        report(conn, r[0], target, AS_OF - timedelta(hours=h))
    report(conn, r[1], target, AS_OF - timedelta(hours=1))

    assert run_job(conn, "process-moderation-queue", AS_OF) == {
        "users_banned": 0,
        "reports_actioned": 0,
        "reports_resolved": 0,
    }
    assert status_of(conn, target) == ("active", None)

    # When a third distinct reporter joins, all seven reports are actioned and 3 reporters recorded
    report(conn, r[2], target, AS_OF - timedelta(hours=2))
    assert run_job(conn, "process-moderation-queue", AS_OF) == {
        "users_banned": 1,
        "reports_actioned": 7,
        "reports_resolved": 0,
    }
    assert rows(conn, "SELECT distinct_reporters, cardinality(report_ids) FROM moderation_actions") == [(3, 7)]


def test_the_window_is_the_last_7_days_up_to_as_of(conn):
    # Given two users each with three reporters, one report at the window's edge:
    # exactly 7 days old (outside) versus one microsecond younger (inside)
    r = reporters(conn, 4)
    outside, inside, late = make_user(conn), make_user(conn), make_user(conn)
    report(conn, r[0], outside, AS_OF - WEEK)
    report(conn, r[1], outside, AS_OF - timedelta(days=1))
    report(conn, r[2], outside, AS_OF)  # exactly at as_of: inside
    edge = report(conn, r[0], inside, AS_OF - WEEK + TICK)
    report(conn, r[1], inside, AS_OF - timedelta(days=1))
    report(conn, r[2], inside, AS_OF)
    # and a user whose third report arrives after as_of (a replayed run must not see it)
    report(conn, r[0], late, AS_OF - timedelta(hours=1))
    report(conn, r[1], late, AS_OF - timedelta(hours=1))
    report(conn, r[2], late, AS_OF + TICK)

    summary = run_job(conn, "process-moderation-queue", AS_OF)

    assert summary == {"users_banned": 1, "reports_actioned": 3, "reports_resolved": 0}
    assert status_of(conn, outside) == ("active", None)
    assert status_of(conn, inside) == ("banned", AS_OF)
    assert status_of(conn, late) == ("active", None)
    assert rows(conn, "SELECT user_id, report_ids[1] FROM moderation_actions") == [(inside, edge)]


def test_only_pending_reports_and_no_self_reports_count(conn):
    # Given a user with 2 pending reports plus 1 dismissed and 1 self-report,
    # and another with 3 pending reports from others plus a self-report
    r = reporters(conn, 3)
    spared, banned = make_user(conn), make_user(conn)
    report(conn, r[0], spared, AS_OF - timedelta(hours=1))
    report(conn, r[1], spared, AS_OF - timedelta(hours=1))
    report(conn, r[2], spared, AS_OF - timedelta(hours=1), status="dismissed")
    report(conn, spared, spared, AS_OF - timedelta(hours=1))
    counted = [report(conn, r[i], banned, AS_OF - timedelta(hours=1)) for i in range(3)]
    self_report = report(conn, banned, banned, AS_OF - timedelta(hours=2))

    summary = run_job(conn, "process-moderation-queue", AS_OF)

    # Then only the second is banned; its self-report is not part of the ban, but as a
    # pending report against a banned user it is resolved
    assert summary == {"users_banned": 1, "reports_actioned": 3, "reports_resolved": 1}
    assert status_of(conn, spared) == ("active", None)
    [(action_id, _user, _a, _actor, _reason, report_ids, n, _at)] = actions(conn)
    assert (report_ids, n) == (sorted(counted), 3)
    assert reports_of(conn, banned) == [
        *[(i, "actioned", AS_OF, action_id) for i in counted],
        (self_report, "resolved", AS_OF, None),
    ]


def test_staff_are_never_banned_and_their_reports_stay_pending(conn):
    r = reporters(conn, 5)
    staff = make_user(conn, is_staff=True)
    ids = [report(conn, x, staff, AS_OF - timedelta(hours=1)) for x in r]

    assert run_job(conn, "process-moderation-queue", AS_OF) == {
        "users_banned": 0,
        "reports_actioned": 0,
        "reports_resolved": 0,
    }
    assert status_of(conn, staff) == ("active", None)
    assert reports_of(conn, staff) == [(i, "pending", None, None) for i in ids]
    assert actions(conn) == []


def test_pending_reports_of_any_age_against_banned_users_are_resolved(conn):
    # Given a user banned earlier (by hand) with old and new pending reports, one already dismissed,
    # and a newly banned user with an old report outside the window
    r = reporters(conn, 3)
    old_ban = make_user(conn, account_status="banned", status_changed_at=EARLIER)
    ancient = report(conn, r[0], old_ban, utc(2025, 1, 1))
    recent = [report(conn, x, old_ban, AS_OF - timedelta(hours=1)) for x in r]
    dismissed = report(conn, r[1], old_ban, utc(2025, 1, 1), status="dismissed")
    after_as_of = report(conn, r[2], old_ban, AS_OF + timedelta(minutes=1))
    new_ban = make_user(conn)
    stale = report(conn, r[0], new_ban, AS_OF - timedelta(days=30))
    fresh = [report(conn, x, new_ban, AS_OF - timedelta(hours=1)) for x in r]

    summary = run_job(conn, "process-moderation-queue", AS_OF)

    # Then the earlier ban is not repeated (no audit row, status_changed_at kept) and its
    # pending reports up to as_of are resolved; the new ban actions its 3 and resolves the stale one
    assert summary == {"users_banned": 1, "reports_actioned": 3, "reports_resolved": 5}
    assert status_of(conn, old_ban) == ("banned", EARLIER)
    assert reports_of(conn, old_ban) == [
        (ancient, "resolved", AS_OF, None),
        *[(i, "resolved", AS_OF, None) for i in recent],
        (dismissed, "dismissed", None, None),
        (after_as_of, "pending", None, None),
    ]
    [(action_id, user_id, *_)] = actions(conn)
    assert user_id == new_ban
    assert reports_of(conn, new_ban) == [
        (stale, "resolved", AS_OF, None),
        *[(i, "actioned", AS_OF, action_id) for i in fresh],
    ]


def test_deleted_users_are_left_alone_and_inactive_users_can_be_banned(conn):
    r = reporters(conn, 3)
    gone = make_user(conn, account_status="deleted", status_changed_at=EARLIER)
    idle = make_user(conn, account_status="inactive", status_changed_at=EARLIER)
    gone_reports = [report(conn, x, gone, AS_OF - timedelta(hours=1)) for x in r]
    for x in r:
        report(conn, x, idle, AS_OF - timedelta(hours=1))

    assert run_job(conn, "process-moderation-queue", AS_OF) == {
        "users_banned": 1,
        "reports_actioned": 3,
        "reports_resolved": 0,
    }
    assert status_of(conn, gone) == ("deleted", EARLIER)
    assert reports_of(conn, gone) == [(i, "pending", None, None) for i in gone_reports]
    assert status_of(conn, idle) == ("banned", AS_OF)


def test_several_users_banned_in_one_run_each_get_their_own_audit_row(conn):
    r = reporters(conn, 4)
    a, b = make_user(conn), make_user(conn)
    a_ids = [report(conn, x, a, AS_OF - timedelta(hours=2)) for x in r[:3]]
    b_ids = [report(conn, x, b, AS_OF - timedelta(hours=3)) for x in r]

    assert run_job(conn, "process-moderation-queue", AS_OF) == {
        "users_banned": 2,
        "reports_actioned": 7,
        "reports_resolved": 0,
    }
    got = {row[1]: row for row in actions(conn)}
    assert got[a][5:7] == (sorted(a_ids), 3) and got[b][5:7] == (sorted(b_ids), 4)
    assert got[b][4] == (
        "auto-ban: 4 distinct reporters (threshold 3) in 4 pending reports "
        "from 2026-11-21T17:00:00Z to 2026-11-28T17:00:00Z"
    )
    for user, ids in ((a, a_ids), (b, b_ids)):
        assert {rep[3] for rep in reports_of(conn, user)} == {got[user][0]}
        assert len(reports_of(conn, user)) == len(ids)


def test_second_run_with_same_as_of_changes_nothing(conn):
    r = reporters(conn, 4)
    a, b, staff = make_user(conn), make_user(conn), make_user(conn, is_staff=True)
    banned_before = make_user(conn, account_status="banned", status_changed_at=EARLIER)
    for x in r:
        report(conn, x, a, AS_OF - timedelta(hours=1))
        report(conn, x, staff, AS_OF - timedelta(hours=1))
        report(conn, x, banned_before, AS_OF - timedelta(days=20))
    report(conn, r[0], b, AS_OF - timedelta(hours=1))
    first = run_job(conn, "process-moderation-queue", AS_OF)
    assert first == {"users_banned": 1, "reports_actioned": 4, "reports_resolved": 4}
    before = everything(conn)

    second = run_job(conn, "process-moderation-queue", AS_OF)

    assert second == {"users_banned": 0, "reports_actioned": 0, "reports_resolved": 0}
    assert everything(conn) == before


def test_dry_run_changes_nothing(conn):
    r = reporters(conn, 3)
    a = make_user(conn)
    for x in r:
        report(conn, x, a, AS_OF - timedelta(hours=1))
    before = everything(conn)

    assert run_job(conn, "process-moderation-queue", AS_OF, dry_run=True) == {
        "users_banned": 1,
        "reports_actioned": 3,
        "reports_resolved": 0,
    }
    assert everything(conn) == before


def test_threshold_comes_from_the_registry_param(conn):
    r = reporters(conn, 2)
    a = make_user(conn)
    for x in r:
        report(conn, x, a, AS_OF - timedelta(hours=1))
    job = registry.get("process-moderation-queue")
    job = dataclasses.replace(job, params=MappingProxyType({"min_reporters": 2}))

    summary = execution.execute(conn, job, AS_OF, deadline=time.monotonic() + 60)

    assert summary == {"users_banned": 1, "reports_actioned": 2, "reports_resolved": 0}
    assert rows(conn, "SELECT reason FROM moderation_actions") == [
        (
            "auto-ban: 2 distinct reporters (threshold 2) in 2 pending reports "
            "from 2026-11-21T17:00:00Z to 2026-11-28T17:00:00Z",
        )
    ]


def test_guide_call_is_logged(conn):
    r = reporters(conn, 3)
    a = make_user(conn)
    for x in r:
        report(conn, x, a, AS_OF - timedelta(hours=1))
    summary = conn.execute("SELECT process_moderation_queue(%s) AS s", (AS_OF,)).fetchone()["s"]
    assert summary == {"users_banned": 1, "reports_actioned": 3, "reports_resolved": 0}
    assert rows(conn, "SELECT job_name, status, trigger FROM cron_job_logs") == [
        ("process_moderation_queue", "succeeded", "sql")
    ]


def test_reason_does_not_depend_on_the_session_time_zone(conn):
    r = reporters(conn, 3)
    a = make_user(conn)
    for x in r:
        report(conn, x, a, AS_OF - timedelta(hours=1))
    conn.execute("SET TimeZone = 'Asia/Tokyo'")
    run_job(conn, "process-moderation-queue", AS_OF)
    assert rows(conn, "SELECT reason FROM moderation_actions") == [(REASON_3_OF_3.format(n=3),)]


def test_a_threshold_below_one_is_refused(conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="min_reporters"):
        conn.execute("SELECT job_process_moderation_queue(%s, 0)", (AS_OF,))


def test_the_window_is_7_utc_days_under_a_new_york_session_across_dst(conn):
    # Given a caller in New York, where the 7 calendar days before as_of (2026-11-03 12:00 UTC)
    # cross the end of daylight saving time (2026-11-01): a New York week is 7 x 24 h + 1 h
    conn.execute("SET TimeZone = 'America/New_York'")
    as_of = utc(2026, 11, 3, 12)
    target = make_user(conn)
    early, *others = reporters(conn, 3)
    report(conn, early, target, as_of - WEEK - timedelta(minutes=30))  # in the extra New York hour
    for reporter in others:
        report(conn, reporter, target, as_of - timedelta(days=1))

    # When the job runs from that session
    summary = run_job(conn, "process-moderation-queue", as_of)

    # Then only 2 reporters fall in the 7 x 24 h window: nobody is banned
    assert summary == {"users_banned": 0, "reports_actioned": 0, "reports_resolved": 0}
    assert status_of(conn, target) == ("active", None)


def test_reports_filed_by_banned_or_deleted_accounts_do_not_count(conn):
    # Given a user reported by 3 distinct accounts, one of them banned and one deleted since
    target, other_target = make_user(conn), make_user(conn)
    good = make_user(conn)
    banned = make_user(conn, account_status="banned", status_changed_at=EARLIER)
    deleted = make_user(conn, account_status="deleted", status_changed_at=EARLIER)
    inactive = make_user(conn, account_status="inactive", status_changed_at=EARLIER)
    for reporter in (good, banned, deleted):
        report(conn, reporter, target, AS_OF - timedelta(hours=1))
    # and another reported by 3 accounts, one inactive (still a real account in the app)
    for reporter in (good, inactive, make_user(conn)):
        report(conn, reporter, other_target, AS_OF - timedelta(hours=1))

    summary = run_job(conn, "process-moderation-queue", AS_OF)

    # Then only the one with 3 reporters in good or inactive standing is banned
    assert summary == {"users_banned": 1, "reports_actioned": 3, "reports_resolved": 0}
    assert status_of(conn, target) == ("active", None)
    assert status_of(conn, other_target) == ("banned", AS_OF)
    assert [r[1] for r in reports_of(conn, target)] == ["pending"] * 3
