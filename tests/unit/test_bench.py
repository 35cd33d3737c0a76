"""jobctl bench's pure parts: the realistic as_of of each job, the guide's table, the targets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobctl import bench
from shared import registry
from shared.errors import ConfigError


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "sunday"),
    [
        (utc(2026, 11, 28, 17, 16), utc(2026, 11, 22)),  # Saturday: last Sunday
        (utc(2026, 11, 29, 23, 59), utc(2026, 11, 22)),  # Sunday not over yet: the one before
        (utc(2026, 11, 30, 0, 0), utc(2026, 11, 29)),  # Monday 00:00: Sunday's day has passed
        (utc(2027, 1, 2, 12), utc(2026, 12, 27)),  # across a year end
    ],
)
def test_base_as_of_is_the_latest_sunday_whose_whole_day_has_passed(now, sunday):
    assert bench.base_as_of(now) == sunday


def test_each_job_runs_at_its_own_fire_time_that_sunday():
    base = utc(2026, 11, 22)
    as_of = {job.name: bench.job_as_of(job, base) for job in registry.JOBS}
    assert as_of == {
        "reset-daily-challenges": base,
        "update-user-streaks": base,
        "calculate-daily-metrics": utc(2026, 11, 22, 1),
        "send-daily-reminders": utc(2026, 11, 22, 18),
        "cleanup-expired-stories": base,
        "cleanup-expired-sessions": base,
        "process-moderation-queue": base,
        "send-weekly-reports": base,
        "cleanup-inactive-accounts": base,  # monthly: not due that day
        "update-leaderboards": base,
        "database-maintenance": base,
    }


def test_the_guides_table_and_the_targets_name_real_jobs():
    assert set(bench.GUIDE_ESTIMATE_S) <= set(registry.BY_NAME)
    assert set(bench.TARGET_S) <= set(registry.BY_NAME)
    assert bench.guide_text("update-leaderboards") == "5-30 s"
    assert bench.guide_text("cleanup-expired-sessions") == "< 1 s"
    assert bench.target_s("send-weekly-reports") == 10.0
    assert bench.target_s("cleanup-expired-sessions") == 1.0


def test_the_data_set_name_carries_users_seed_and_schema():
    name = bench.dataset_name(1_000_000, 42)
    assert name == f"bench_1000000_42_{bench.schema_key()}"
    assert len(name) < 63  # a Postgres identifier


def test_a_data_set_the_disk_cannot_hold_is_refused_in_one_line(tmp_path):
    # the need grows with the users; a data set no disk holds is refused before anything is built
    assert bench.dataset.disk_needed_gb(3_000_000) == 3 * bench.dataset.disk_needed_gb(1_000_000)
    with pytest.raises(ConfigError, match=r"not enough disk .* needs about \d+ GB free .* GB are free") as raised:
        bench.dataset.check_free(tmp_path, 10**12)
    assert "\n" not in str(raised.value)
    bench.dataset.check_free(tmp_path, 1_000)  # a small one fits


def test_the_ratio_is_the_jobs_time_over_its_floor_per_row_when_it_wrote_fewer_rows():
    from jobctl.bench import floor

    streaks, stories = floor.FLOORS["update-user-streaks"], floor.FLOORS["cleanup-expired-stories"]
    measured = floor.FloorTiming(floor_s=2.0, rows=1000, runs_s=[2.0])
    assert floor.ratio(3.0, {"streaks_incremented": 600}, streaks, measured) == 1.5
    # a cleanup stopped by its budget after half the rows: compared with half the floor
    assert floor.ratio(3.0, {"stories_deleted": 500}, stories, measured) == 3.0
    assert floor.ratio(3.0, {}, stories, floor.FloorTiming(floor_s=0.0, rows=0, runs_s=[])) is None
