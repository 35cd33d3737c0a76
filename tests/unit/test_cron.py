"""The cron module: validation, exact EventBridge strings, and agreement with independent evaluators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aws_croniter import AwsCroniter
from croniter import croniter

from shared import registry
from shared.cron import CronError, next_fire_times, parse, previous_fire_time, to_eventbridge

# The exact EventBridge form of every registry schedule (what the CDK template must show).
EXPECTED_EVENTBRIDGE = {
    "reset-daily-challenges": "cron(0 0 * * ? *)",
    "update-user-streaks": "cron(0 0 * * ? *)",
    "calculate-daily-metrics": "cron(0 1 * * ? *)",
    "send-daily-reminders": "cron(0 18 * * ? *)",
    "cleanup-expired-stories": "cron(0 * * * ? *)",
    "update-leaderboards": "cron(0 * * * ? *)",
    "cleanup-expired-sessions": "cron(0/15 * * * ? *)",
    "process-moderation-queue": "cron(0 * * * ? *)",
    "send-weekly-reports": "cron(0 0 ? * SUN *)",
    "cleanup-inactive-accounts": "cron(0 2 1 * ? *)",
    "database-maintenance": "cron(0 3 1 * ? *)",
}


def test_every_registry_schedule_converts_to_the_exact_eventbridge_string():
    assert {job.name: to_eventbridge(job.cron) for job in registry.JOBS} == EXPECTED_EVENTBRIDGE


def test_registry_keeps_the_guides_schedules():
    guide = {
        "reset-daily-challenges": "0 0 * * *",
        "update-user-streaks": "0 0 * * *",
        "calculate-daily-metrics": "0 1 * * *",
        "send-daily-reminders": "0 18 * * *",
        "cleanup-expired-stories": "0 * * * *",
        "update-leaderboards": "0 * * * *",
        "cleanup-expired-sessions": "*/15 * * * *",
        "process-moderation-queue": "0 * * * *",
        "send-weekly-reports": "0 0 * * 0",
        "cleanup-inactive-accounts": "0 2 1 * *",
        "database-maintenance": "0 3 1 * *",
    }
    assert {job.name: job.cron for job in registry.JOBS} == guide


@pytest.mark.parametrize(
    ("unix", "eventbridge"),
    [
        ("0 0 * * 7", "cron(0 0 ? * SUN *)"),  # 7 is Sunday too
        ("0 9 * * 1-5", "cron(0 9 ? * MON-FRI *)"),
        ("0 9 * * mon-fri", "cron(0 9 ? * MON-FRI *)"),
        ("30 6 * * 5-7", "cron(30 6 ? * SUN,FRI-SAT *)"),
        ("0 */6 * * *", "cron(0 0/6 * * ? *)"),
        ("5,35 1-3 * * *", "cron(5,35 1-3 * * ? *)"),
        ("0 0 1 jan,jul *", "cron(0 0 1 1,7 ? *)"),
        ("0 0 * * */2", "cron(0 0 ? * SUN,TUE,THU,SAT *)"),
        ("10/20 * * * *", "cron(10/20 * * * ? *)"),
        ("0 0 * * 0-6", "cron(0 0 * * ? *)"),
        ("@daily", "cron(0 0 * * ? *)"),
        ("@weekly", "cron(0 0 ? * SUN *)"),
    ],
)
def test_conversion_examples(unix, eventbridge):
    assert to_eventbridge(unix) == eventbridge


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 1 * 1", "restricts both day-of-month and day-of-week"),
        ("0 0 */2 * MON", "restricts both day-of-month and day-of-week"),
        ("60 * * * *", "60 is out of range for the minute field (0-59)"),
        ("0 24 * * *", "out of range for the hour field"),
        ("0 0 0 * *", "out of range for the day-of-month field (1-31)"),
        ("0 0 * 13 *", "out of range for the month field"),
        ("0 0 * * 8", "out of range for the day-of-week field"),
        ("0 0 * *", "has 4 field(s); standard cron has 5"),
        ("0 0 * * * *", "has 6 field(s)"),
        ("*/0 * * * *", "must be a positive number"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 * * FUNDAY", "is not valid in the day-of-week field"),
        ("cron(0 0 * * ? *)", "is an EventBridge expression"),
        ("0 0 ? * 1", "is not standard cron"),
        ("", "has 1 field(s)"),
    ],
)
def test_invalid_and_inexpressible_crons_are_refused_with_a_reason(expr, message):
    with pytest.raises(CronError, match=None) as info:
        to_eventbridge(expr)
    assert message in str(info.value)


# Expressions covering every feature: lists, ranges, steps, names, 0/7 Sunday, month
# ends, and the registry's own schedules.
AGREEMENT_CASES = [job.cron for job in registry.JOBS] + [
    "*/7 * * * *",
    "3-59/11 */5 * * *",
    "0 0 * * 1-5",
    "0 12 * * sat,sun",
    "0 0 * * 7",
    "0 0 31 * *",
    "0 0 30 1-12/2 *",
    "45 23 * dec *",
    "0 8-18/2 * * MON-FRI",
    "0 0 1,15 * *",
    "20 2 * * 3",
    "0 0 L * *".replace("L", "28-31"),
    "59 23 31 12 *",
    "0 */3 * * 0",
    "1 2 3 4 *",
    "*/30 9-17 * * 2-4",
    "0 0 * * 6,0",
]


def _aws_next(expression: str, start: datetime, count: int) -> list[datetime]:
    inner = expression.removeprefix("cron(").removesuffix(")")
    return [t.astimezone(UTC) for t in AwsCroniter(inner).get_next(start, count)]


def _unix_next(expression: str, start: datetime, count: int) -> list[datetime]:
    it = croniter(expression, start)
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


@pytest.mark.parametrize("expr", AGREEMENT_CASES)
@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 11, 28, 16, 49, tzinfo=UTC),
        datetime(2027, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2028, 2, 28, 0, 0, tzinfo=UTC),
    ],
)
def test_next_50_fire_times_agree_between_unix_and_eventbridge_semantics(expr, start):
    # Given a Unix cron and its EventBridge conversion
    eventbridge = to_eventbridge(expr)
    # When each is evaluated by an independent library (croniter, aws-croniter)
    unix = _unix_next(expr, start, 50)
    aws = _aws_next(eventbridge, start, 50)
    # Then the 50 next fire times are the same, and ours match croniter's
    assert unix == aws, f"{expr} -> {eventbridge}"
    assert next_fire_times(expr, start, 50) == unix


def test_leap_day_agrees_for_the_next_ten_occurrences():
    # (50 leap days span two centuries, past aws-croniter's search horizon)
    start = datetime(2026, 11, 28, tzinfo=UTC)
    expr = "15 4 29 2 *"
    assert _aws_next(to_eventbridge(expr), start, 10) == _unix_next(expr, start, 10) == next_fire_times(expr, start, 10)


def test_next_fire_times_weekly_is_sunday_midnight():
    after = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)  # a Saturday
    assert next_fire_times("0 0 * * 0", after, 2) == [
        datetime(2026, 11, 29, tzinfo=UTC),
        datetime(2026, 12, 6, tzinfo=UTC),
    ]


def test_previous_fire_time_includes_an_exact_match():
    at = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
    assert previous_fire_time("0 18 * * *", at) == at
    assert previous_fire_time("0 18 * * *", at - timedelta(seconds=1)) == at - timedelta(days=1)


def test_naive_times_are_refused():
    with pytest.raises(CronError, match="timezone-aware"):
        next_fire_times("0 0 * * *", datetime(2026, 1, 1))


def test_parse_folds_sunday_seven_into_zero():
    assert parse("0 0 * * 5-7").days_of_week == frozenset({5, 6, 0})
