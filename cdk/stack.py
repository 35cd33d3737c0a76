"""The stack: composes the constructs, one scheduled job per registry entry."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk.bundling import build_asset
from cdk.config import StackConfig
from cdk.database_access import DatabaseAccess
from cdk.dead_letter_queue import DeadLetterQueue
from cdk.lambda_function import FunctionDefaults
from cdk.migrations import SchemaMigrations
from cdk.monitoring import MonitoredJob, Monitoring
from cdk.scheduled_job import ScheduledJob
from cdk.watchdog import MissedRunWatchdog
from shared.registry import JOBS

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


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


class ScheduledJobsStack(Stack):
    """Every registry job as a Lambda function on an EventBridge schedule, plus what watches them."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self.database = DatabaseAccess(self, "Database", config=config)
        asset = build_asset(install_dependencies=not config.skip_bundling, architecture=config.architecture)
        defaults = FunctionDefaults(
            code=lambda_.Code.from_asset(str(asset)),
            database=self.database,
            log_retention=_RETENTION[config.log_retention_days],
            architecture=config.architecture,
            name_prefix=config.name_prefix,
        )
        self.dead_letter_queue = DeadLetterQueue(self, "DeadLetterQueue")
        self.migrations = SchemaMigrations(self, "Migrations", defaults=defaults)
        self.jobs = {
            job.name: ScheduledJob(
                self, _pascal(job.name), job=job, defaults=defaults, dead_letter_queue=self.dead_letter_queue.queue
            )
            for job in JOBS
        }
        self.watchdog = MissedRunWatchdog(
            self, "Watchdog", defaults=defaults, dead_letter_queue=self.dead_letter_queue.queue
        )
        for after_migrations in (*self.jobs.values(), self.watchdog):
            # A new job's SQL is migrated before its function and schedule exist.
            after_migrations.node.add_dependency(self.migrations.resource)
        if config.pg_cron_cutover:
            self.migrations.add_pg_cron_cutover(after=list(self.jobs.values()))
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            jobs=[MonitoredJob(s.job, s.function, s.log_group) for s in self.jobs.values()],
            watchdog_log_group=self.watchdog.log_group,
            dead_letter_queue=self.dead_letter_queue,
            alarm_email=config.alarm_email,
            name_prefix=config.name_prefix,
        )
        self._outputs()

    def _outputs(self) -> None:
        database = self.database
        created = " (created by the stack: fill it in)" if database.created_secret else ""
        CfnOutput(
            self,
            "DatabaseSecretArn",
            value=database.secret.secret_arn,
            description=f"The secret holding the jobs' database connection URL{created}",
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
            value=self.migrations.function.function_name,
            description='Run by hand with {"RequestType": "Update"} after filling in the secret',
        )
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue.queue_url)
        CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)
