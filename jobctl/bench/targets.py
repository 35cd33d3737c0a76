"""The guide's expected times and the targets each measure is checked against (docs/performance.md)."""

from __future__ import annotations

#: The guide's table of expected times, in seconds (low, high); every other job: "< 1 s".
GUIDE_ESTIMATE_S: dict[str, tuple[float, float]] = {
    "update-user-streaks": (1, 5),
    "calculate-daily-metrics": (2, 10),
    "update-leaderboards": (5, 30),
    "send-weekly-reports": (10, 60),
}
GUIDE_OTHERS_S = (0.0, 1.0)
#: Issue 8's targets at 1,000,000 users on a 2-core machine, in seconds; every other job: 1 s.
TARGET_S: dict[str, float] = {
    "update-user-streaks": 1.0,
    "calculate-daily-metrics": 2.0,
    "update-leaderboards": 5.0,
    "send-weekly-reports": 10.0,
}
TARGET_OTHERS_S = 1.0
#: cleanup-expired-stories may take longer in total; no batch may hold its locks longer than this.
TARGET_BATCH_LOCK_S = 1.0
TARGET_RUNNER_OVERHEAD_MS = 5.0
TARGET_COLD_IMPORT_MS = 300.0
TARGET_ASSET_MB = 30.0

DEFAULT_USERS = 1_000_000
DEFAULT_RUNS = 5
OVERHEAD_RUNS = 200
IMPORT_RUNS = 7
OVERHEAD_JOB = "cleanup-expired-sessions"


def guide_text(name: str) -> str:
    low, high = GUIDE_ESTIMATE_S.get(name, GUIDE_OTHERS_S)
    return f"{low:g}-{high:g} s" if low else f"< {high:g} s"


def target_s(name: str) -> float:
    return TARGET_S.get(name, TARGET_OTHERS_S)
