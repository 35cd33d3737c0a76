"""The Lambda entry point of every job (one function per job, JOB_NAME tells which): parse the
event, call the runner, return the result. A failed run is logged by the runner, then raised
here for Lambda's retries, the dead-letter queue and the alarms; a skip (an overlap, a
dependency wait) returns normally (README, "The run: exactly once per occurrence").
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import registry, runner
from shared.events import parse_event
from shared.observability import logger, metrics, tracer

#: Seconds kept back from Lambda's remaining time to record the outcome after a timeout.
RESERVE_S = 15


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = registry.get(os.environ.get("JOB_NAME", ""))
    request = parse_event(job, event)
    budget_s = context.get_remaining_time_in_millis() / 1000 - RESERVE_S
    result = runner.run(request, request_id=context.aws_request_id, budget_s=budget_s)
    return result.to_dict()
