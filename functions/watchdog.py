"""The missed-run watchdog's Lambda entry point (scheduled every 15 minutes)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from shared import watchdog
from shared.naming import METRICS_NAMESPACE
from shared.observability import logger


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    missed = watchdog.check(datetime.now(UTC))
    watchdog.emit_metrics(missed, os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE))
    late = {name: at.isoformat() for name, at in missed.items() if at is not None}
    for name, as_of in late.items():
        logger.error("run missed", extra={"job": name, "as_of": as_of})
    return {"checked": len(missed), "missed": late}
