"""The simulation plan, retries and the real-time scheduler, driven by a fake clock (no DB, no waiting)."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobctl import demo, local, schedules
from shared import naming, registry
from shared.errors import DependencyNotMet
from shared.events import eventbridge_time


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class FakeClock:
    """A clock whose wait() advances time instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.waits: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)
        return False


class Recorder:
    """An invoke function that records each call and what the clock said then."""

    def __init__(self, clock: FakeClock | None = None, run_s: float = 0.0) -> None:
        self.calls: list[tuple[str, dict[str, Any], datetime | None]] = []
        self.clock = clock
        self.run_s = run_s

    def __call__(self, job: str, event: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((job, event, self.clock() if self.clock else None))
        if self.clock and self.run_s:
            self.clock.now += timedelta(seconds=self.run_s)  # the run takes time
        return {"job": job, "status": "succeeded", "summary": {}}


# --------------------------------------------------------------------------- the plan


def test_occurrences_over_a_week_match_each_schedule() -> None:
    # Given the week from Sunday 2026-11-01 00:00 (the 1st, so the monthly jobs fall in it)
    start = utc(2026, 11, 1)
    # When the plan is computed
    plan = schedules.occurrences(start, start + timedelta(days=7))
    # Then every job fires as often as its cron says in [start, start + 7 days)
    counts: dict[str, int] = {}
    for occ in plan:
        counts[occ.job] = counts.get(occ.job, 0) + 1
    assert counts == {
        "reset-daily-challenges": 7,
        "update-user-streaks": 7,
        "calculate-daily-metrics": 7,
        "send-daily-reminders": 7,
        "cleanup-expired-stories": 168,
        "update-leaderboards": 168,
        "cleanup-expired-sessions": 672,
        "process-moderation-queue": 168,
        "send-weekly-reports": 1,
        "cleanup-inactive-accounts": 1,
        "database-maintenance": 1,
    }
    # and the end is excluded, the start included
    assert plan[0] == schedules.Occurrence(start, "reset-daily-challenges")
    assert all(start <= occ.at < start + timedelta(days=7) for occ in plan)


def test_occurrences_are_ordered_by_time_then_registry_order() -> None:
    plan = schedules.occurrences(utc(2026, 11, 1), utc(2026, 11, 1, 1, 0, 1))
    order = {job.name: i for i, job in enumerate(registry.JOBS)}
    assert plan == sorted(plan, key=lambda o: (o.at, order[o.job]))
    midnight = [o.job for o in plan if o.at == utc(2026, 11, 1)]
    assert midnight == [
        job.name for job in registry.JOBS if job.cron in {"0 0 * * *", "0 * * * *", "*/15 * * * *", "0 0 * * 0"}
    ]
    assert [o.at.strftime("%H:%M") for o in plan if o.job == "cleanup-expired-sessions"] == [
        "00:00",
        "00:15",
        "00:30",
        "00:45",
        "01:00",
    ]
    # the metrics job (01:00) comes after the streaks it depends on (00:00)
    jobs = [o.job for o in plan]
    assert jobs.index("update-user-streaks") < jobs.index("calculate-daily-metrics")
    assert len(plan) == 7 + 3 + 5  # 7 jobs at 00:00 (with Sunday's report), 00:15-00:45, 5 jobs at 01:00


def test_scheduled_event_has_the_eventbridge_shape_with_the_local_source() -> None:
    event = local.scheduled_event(utc(2026, 11, 29), job_name="update-user-streaks")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == naming.LOCAL_SCHEDULER_SOURCE
    assert event["time"] == "2026-11-29T00:00:00Z"
    assert event["resources"] == ["arn:aws:events:local:000000000000:rule/update-user-streaks-schedule"]
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


def test_manual_event_combines_the_flags() -> None:
    assert local.manual_event() == {}
    assert local.manual_event(as_of=utc(2026, 11, 28), dry_run=True, force=True) == {
        "as_of": "2026-11-28T00:00:00Z",
        "dry_run": True,
        "force": True,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", utc(2026, 11, 1)),
        ("2026-11-01T02:00", utc(2026, 11, 1, 2)),
        ("2026-11-01T02:00:00Z", utc(2026, 11, 1, 2)),
        ("2026-11-01T03:00:00+01:00", utc(2026, 11, 1, 2)),
    ],
)
def test_parse_time_reads_iso_8601_as_utc(text: str, expected: datetime) -> None:
    assert local.parse_time(text) == expected


# --------------------------------------------------------------------------- retries


def test_a_failed_occurrence_is_retried_once_with_the_same_event_and_the_simulation_goes_on() -> None:
    # Given an invoke that fails the first attempt of the metrics run (its dependency was late)
    seen: list[tuple[str, dict[str, Any]]] = []

    def invoke(job: str, event: dict[str, Any]) -> dict[str, Any]:
        seen.append((job, event))
        if job == "calculate-daily-metrics" and len(seen) == 1:
            raise DependencyNotMet("needs update-user-streaks")
        if job == "update-leaderboards":
            raise DependencyNotMet("always fails")
        return {"status": "succeeded"}

    plan = [
        schedules.Occurrence(utc(2026, 11, 1, 1), "calculate-daily-metrics"),
        schedules.Occurrence(utc(2026, 11, 1, 1), "update-leaderboards"),
        schedules.Occurrence(utc(2026, 11, 1, 1), "cleanup-expired-stories"),
    ]
    # When simulated
    outcomes = schedules.simulate(plan, invoke)
    # Then the metrics run succeeded on its retry, which carried the same event (as Lambda's does)
    assert [(o.status, o.attempts) for o in outcomes] == [("succeeded", 2), ("failed", 2), ("succeeded", 1)]
    assert seen[0][1] == seen[1][1]
    assert outcomes[1].error == "always fails"
    # and the failure did not stop the next occurrence
    assert [job for job, _ in seen] == ["calculate-daily-metrics"] * 2 + ["update-leaderboards"] * 2 + [
        "cleanup-expired-stories"
    ]
    tallies = {t.job: t for t in schedules.tally(outcomes)}
    assert (tallies["update-leaderboards"].failed, tallies["calculate-daily-metrics"].retried) == (1, 1)


# --------------------------------------------------------------------------- the real-time scheduler


def test_scheduler_fires_every_occurrence_on_time_in_order_with_a_fake_clock() -> None:
    # Given a fake clock at 23:50:30 the day before
    clock = FakeClock(utc(2026, 10, 31, 23, 50, 30))
    recorder = Recorder(clock)
    scheduler = schedules.Scheduler(recorder, clock=clock, wait=clock.wait)
    # When it runs until 01:30
    outcomes = scheduler.run(until=utc(2026, 11, 1, 1, 30))
    # Then it fired exactly the occurrences of that window, in order, never early
    expected = schedules.occurrences(utc(2026, 10, 31, 23, 50, 30), utc(2026, 11, 1, 1, 30))
    assert [o.occurrence for o in outcomes] == expected
    for (job, event, at_call), occ in zip(recorder.calls, expected, strict=True):
        assert job == occ.job
        assert at_call is not None and at_call >= occ.at
        assert event["time"] == eventbridge_time(occ.at)  # the scheduled time, not the clock
        assert event["source"] == naming.LOCAL_SCHEDULER_SOURCE
    # and it waited (no busy loop): first wait is 9.5 minutes, to 00:00
    assert clock.waits[0] == 9 * 60 + 30


def test_scheduler_fires_late_occurrences_with_their_scheduled_time_when_runs_are_slow() -> None:
    # Given runs that take 20 minutes each (longer than the 15-minute schedule)
    clock = FakeClock(utc(2026, 11, 2, 10, 59))
    recorder = Recorder(clock, run_s=20 * 60)
    scheduler = schedules.Scheduler(
        recorder, jobs=[registry.get("cleanup-expired-sessions")], clock=clock, wait=clock.wait
    )
    # When it runs until 11:46
    scheduler.run(until=utc(2026, 11, 2, 11, 46))
    # Then every occurrence still fired once, in order, each event carrying its own time
    assert [e["time"] for _, e, _ in recorder.calls] == [
        "2026-11-02T11:00:00Z",
        "2026-11-02T11:15:00Z",
        "2026-11-02T11:30:00Z",
        "2026-11-02T11:45:00Z",
    ]


def test_stop_lets_the_run_in_progress_finish_and_starts_no_other() -> None:
    clock = FakeClock(utc(2026, 10, 31, 23, 59))
    calls: list[str] = []
    scheduler: schedules.Scheduler

    def invoke(job: str, event: dict[str, Any]) -> dict[str, Any]:
        calls.append(job)
        if len(calls) == 2:
            scheduler.stop()  # Ctrl-C arrives during the second run
        return {"status": "succeeded"}

    scheduler = schedules.Scheduler(invoke, clock=clock, wait=clock.wait)
    outcomes = scheduler.run()
    # The second run finished and was recorded; the other jobs due at 00:00 did not start
    assert calls == ["reset-daily-challenges", "update-user-streaks"]
    assert [(o.occurrence.job, o.status) for o in outcomes] == [
        ("reset-daily-challenges", "succeeded"),
        ("update-user-streaks", "succeeded"),
    ]


def test_sigint_stops_the_scheduler_cleanly_after_the_run_in_progress() -> None:
    # Given a scheduler with Ctrl-C handling installed
    clock = FakeClock(utc(2026, 11, 1, 0, 14))
    calls: list[str] = []

    def invoke(job: str, event: dict[str, Any]) -> dict[str, Any]:
        calls.append(job)
        os.kill(os.getpid(), signal.SIGINT)  # the operator presses Ctrl-C mid-run
        return {"status": "succeeded"}

    scheduler = schedules.Scheduler(
        invoke, jobs=[registry.get("cleanup-expired-sessions")], clock=clock, wait=clock.wait
    )
    previous = signal.getsignal(signal.SIGINT)
    with schedules.stop_on_signals(scheduler):
        outcomes = scheduler.run()  # no KeyboardInterrupt escapes
    # Then the run in progress completed, nothing else started, and the old handler is back
    assert calls == ["cleanup-expired-sessions"]
    assert [o.status for o in outcomes] == ["succeeded"]
    assert signal.getsignal(signal.SIGINT) is previous


def test_default_wait_wakes_up_to_notice_a_stop() -> None:
    # The real wait polls (at most POLL_S) so that a stop request is seen while idle.
    scheduler = schedules.Scheduler(Recorder())
    scheduler.stop()
    assert scheduler.run() == []


# --------------------------------------------------------------------------- demo window


@pytest.mark.parametrize(
    "now", [utc(2026, 11, 28, 17), utc(2026, 11, 10), utc(2026, 11, 9, 23, 59), utc(2026, 3, 1), utc(2027, 1, 5, 12)]
)
def test_demo_window_holds_every_job_and_lies_in_the_past(now: datetime) -> None:
    start = demo.demo_start(now)
    end = start + timedelta(days=8)
    assert start.day == 1 and (start.hour, start.minute) == (0, 0)
    assert end <= now - timedelta(days=1)
    fired = {occ.job for occ in schedules.occurrences(start, end)}
    assert fired == set(registry.BY_NAME)  # the weekly and monthly jobs included
