"""The stack: composes the constructs, one scheduled job per registry entry."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.bundling import build_asset
from cdk.config import StackConfig
from cdk.database_access import DatabaseAccess
from cdk.migrations import SchemaMigrations
from cdk.monitoring import Monitoring
from cdk.nag import acknowledge
from cdk.scheduled_job import ScheduledJob
from cdk.watchdog import MissedRunWatchdog
from shared.registry import JOBS


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    try:
        return _RETENTION[days]
    except KeyError:
        raise ValueError(f"logRetentionDays {days}: use one of {', '.join(map(str, _RETENTION))}") from None


class ScheduledJobsStack(Stack):
    """Every registry job as a Lambda function on an EventBridge schedule, plus what watches them."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        prefix = config.name_prefix
        retention = _retention(config.log_retention_days)
        code = lambda_.Code.from_asset(str(build_asset(install_dependencies=not config.skip_bundling)))

        database = DatabaseAccess(
            self,
            "Database",
            secret_arn=config.database_secret_arn,
            migrations_secret_arn=config.migrations_secret_arn,
            vpc_id=config.vpc_id,
            subnet_ids=config.subnet_ids,
            security_group_id=config.security_group_id,
        )

        # One queue for every undeliverable event and every run that failed all its retries.
        dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue (EventBridge target DLQ and Lambda on-failure "
            "destination); an operator reads and purges it, nothing consumes it.",
        )

        migrations = SchemaMigrations(
            self, "Migrations", code=code, database=database, log_retention=retention, name_prefix=prefix
        )

        self.jobs: dict[str, ScheduledJob] = {}
        for job in JOBS:
            scheduled = ScheduledJob(
                self,
                _pascal(job.name),
                job=job,
                code=code,
                database=database,
                dead_letter_queue=dead_letter_queue,
                log_retention=retention,
                name_prefix=prefix,
            )
            # A new job's SQL is migrated before its function and schedule exist.
            scheduled.node.add_dependency(migrations.resource)
            self.jobs[job.name] = scheduled

        if config.pg_cron_cutover:
            migrations.add_pg_cron_cutover(after=list(self.jobs.values()))

        watchdog = MissedRunWatchdog(
            self,
            "Watchdog",
            code=code,
            database=database,
            dead_letter_queue=dead_letter_queue,
            log_retention=retention,
            name_prefix=prefix,
        )
        watchdog.node.add_dependency(migrations.resource)

        Monitoring(
            self,
            "Monitoring",
            jobs=JOBS,
            job_log_groups=[scheduled.log_group for scheduled in self.jobs.values()],
            watchdog_log_group=watchdog.log_group,
            dead_letter_queue=dead_letter_queue,
            alarm_email=config.alarm_email,
            name_prefix=prefix,
        )

        CfnOutput(
            self,
            "DatabaseSecretArn",
            value=database.secret.secret_arn,
            description="The secret holding the jobs' database connection URL"
            + (" (created by the stack: fill it in)" if database.created_secret else ""),
        )
        if database.split:
            CfnOutput(
                self,
                "MigrationsSecretArn",
                value=database.migrations_secret.secret_arn,
                description="The schema owner's connection, read by the migrate function only",
            )
        CfnOutput(
            self,
            "MigrateFunctionName",
            value=migrations.function.function_name,
            description='Run by hand with {"RequestType": "Update"} after filling in the secret',
        )
        CfnOutput(self, "DeadLetterQueueUrl", value=dead_letter_queue.queue_url)
