"""One registry job: its Lambda function and the EventBridge rule that fires it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.lambda_function import FunctionDefaults, python_function
from cdk.nag import acknowledge
from shared import cron, naming
from shared.registry import Job, Mode

HANDLER = "functions.handler.handler"

# Lambda asynchronous invocation. A failed run is retried twice (Lambda waits about 1 and then
# 2 minutes); the runner makes a retry of the same occurrence safe (one success per as_of).
# An event still unprocessed after an hour (throttling, repeated failures) is given up and
# sent to the dead-letter queue: by then an operator should decide, and the missed-run and
# failure alarms have fired. Every job is idempotent per as_of, so a late run is correct,
# only late.
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(1)
# EventBridge -> Lambda delivery (the Invoke API call itself: throttled, function being
# updated, permission missing). Retried with back-off for up to an hour, then dead-lettered.
TARGET_RETRY_ATTEMPTS = 8
TARGET_MAX_EVENT_AGE = Duration.hours(1)


class ScheduledJob(Construct):
    """The job's function (named after the job, for the console) and its schedule rule.

    The rule's target keeps EventBridge's default scheduled event as the input: its ``time``
    is the occurrence the run is for (``as_of``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job: Job,
        defaults: FunctionDefaults,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.job = job
        self.function = python_function(
            self,
            "Function",
            defaults=defaults,
            handler=HANDLER,
            function_name=naming.function_name(job.name, defaults.name_prefix),
            description=f"{job.name} ({job.cron} UTC): {job.description}",
            memory_mb=job.memory_mb,
            timeout_s=job.lambda_timeout_s,
            environment={"JOB_NAME": job.name},
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=ASYNC_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(dead_letter_queue),
        )
        if job.mode is Mode.MAINTENANCE and defaults.database.split:
            # Postgres 15/16 (Supabase) let only a table's owner VACUUM it: this one job also
            # reads the schema owner's secret (migrationsSecretArn) and VACUUMs with it; its
            # log pruning and run record stay on the job user's connection (shared/execution.py).
            self.function.add_environment(
                "MAINTENANCE_DATABASE_SECRET_ARN", defaults.database.migrations_secret.secret_arn
            )
            defaults.database.grant_read(self.function, defaults.database.migrations_secret)
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "A failed asynchronous invocation goes to the on-failure destination (the dead-letter queue), "
            "which records the error as well as the event; a DeadLetterConfig too would send each one twice.",
        )
        self.log_group = self.function.log_group
        self.rule = events.Rule(
            self,
            "Schedule",
            rule_name=naming.rule_name(job.name, defaults.name_prefix),
            description=f"{job.name}: {job.cron} (UTC)",
            schedule=events.Schedule.expression(cron.to_eventbridge(job.cron)),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                    max_event_age=TARGET_MAX_EVENT_AGE,
                    dead_letter_queue=dead_letter_queue,
                )
            ],
        )
