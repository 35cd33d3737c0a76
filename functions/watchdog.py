"""The watchdog's Lambda entry point (scheduled every 15 minutes): catch up, then report misses.

It runs the occurrences inside their job's catch-up window that left no run, in-process
through the runner (trigger ``catchup``), then emits ``MissedRuns`` for what falls outside
the windows and a heartbeat. See ``shared/watchdog.py`` and ``shared/catchup.py``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from shared import catchup, db, watchdog
from shared.naming import METRICS_NAMESPACE
from shared.observability import logger, metrics


def _check(now: datetime) -> watchdog.Check:
    return db.with_reconnect(lambda conn: watchdog.check(conn, now), db.get_connection())[1]


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    found = _check(datetime.now(UTC))
    outcomes = catchup.catch_up(
        found,
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000,
        # each run's metrics carry its own job dimension: flush them one run at a time
        after_run=lambda: metrics.flush_metrics(raise_on_empty_metrics=False),
        request_id=context.aws_request_id,
    )
    if outcomes:
        found = _check(datetime.now(UTC))
    watchdog.emit_metrics(found.missed_counts(), os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE))
    missed = [d.to_dict() for d in found.missed]
    for m in missed:
        logger.error("run missed", extra=m)
    return {"checked": len(found.jobs), "caught_up": [o.to_dict() for o in outcomes], "missed": missed}
