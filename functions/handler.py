"""The Lambda entry point of every job (one function per job, JOB_NAME tells which).

Thin on purpose: Powertools decorators, parse the event, call the runner, return the
result. A failed run has been logged by the runner before its error is raised here, so
Lambda's retries, the dead-letter queue and the alarms see it. A skip returns normally:
an overlap follows the job's overlap policy, a dependency not yet met waits until its
deadline, and an occurrence left to run is caught up by the watchdog (``shared.catchup``),
so a routine overlap never becomes a retry, a dead letter or an alarm.
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
