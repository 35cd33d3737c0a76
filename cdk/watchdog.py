"""The missed-run watchdog: a function every 15 minutes that checks the run log."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.lambda_function import FunctionDefaults, python_function
from cdk.nag import acknowledge
from shared.registry import JOBS

HANDLER = "functions.watchdog.handler"
#: Lambda's maximum: a catch-up of database-maintenance (630 s) fits, and shorter ones after it.
CATCHUP_TIMEOUT_S = 900
INTERVAL = Duration.minutes(15)


class MissedRunWatchdog(Construct):
    """Emits ``MissedRuns`` per job and a heartbeat; see ``shared/watchdog.py``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        defaults: FunctionDefaults,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = python_function(
            self,
            "Function",
            defaults=defaults,
            handler=HANDLER,
            function_name=f"{defaults.name_prefix}scheduled-jobs-watchdog",
            description="Watchdog: every 15 minutes, catches up the occurrences inside their job's "
            "catch-up window that left no run, and reports older misses",
            # catch-up runs the jobs in-process (shared/catchup.py): room for the largest and longest
            memory_mb=max(job.memory_mb for job in JOBS),
            timeout_s=CATCHUP_TIMEOUT_S,
            # A check is superseded by the next one in 15 minutes: no retry, no stale event.
            retry_attempts=0,
            max_event_age=Duration.minutes(15),
        )
        superseded = (
            "A failed check is superseded by the next one 15 minutes later, and a watchdog that stops "
            "reporting raises its own alarm (scheduled-jobs-watchdog-silent): a dead-lettered check would "
            "only need purging."
        )
        acknowledge(self.function, "Serverless-LambdaDLQ", superseded)
        acknowledge(self.function, "Serverless-LambdaAsyncFailureDestination", superseded)
        self.log_group = self.function.log_group
        self.rule = events.Rule(
            self,
            "Schedule",
            rule_name=f"{defaults.name_prefix}scheduled-jobs-watchdog-schedule",
            description="Missed-run watchdog, every 15 minutes",
            schedule=events.Schedule.rate(INTERVAL),
            targets=[
                targets.LambdaFunction(
                    self.function, retry_attempts=2, max_event_age=INTERVAL, dead_letter_queue=dead_letter_queue
                )
            ],
        )
