"""Monitoring: the dashboard, the alarms and the SNS topic they notify."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from shared import naming
from shared.registry import Job
from shared.watchdog import METRIC_HEARTBEAT

# CloudWatch Logs Insights: the runner logs a failure at ERROR with message "run failed";
# the watchdog logs a missed occurrence at ERROR with message "run missed".
FAILURES_QUERY = [
    "fields @timestamp, job, as_of, status, run_id, message, exception_name, exception",
    'filter level = "ERROR" and (message = "run failed" or message = "run missed")',
    "sort @timestamp desc",
    "limit 100",
]
GRAPH_PERIOD = Duration.hours(1)


def job_metric(
    job_name: str,
    metric_name: str,
    *,
    statistic: str = "Sum",
    period: Duration = GRAPH_PERIOD,
    label: str | None = None,
) -> cw.Metric:
    """A metric the runner (or the watchdog) emits for one job: dimensions service and job."""
    return cw.Metric(
        namespace=naming.METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": naming.SERVICE, naming.JOB_DIMENSION: job_name},
        statistic=statistic,
        period=period,
        label=label,  # none for alarms: a label turns the alarm into a metric-math form
    )


class Monitoring(Construct):
    """One SNS topic (KMS-encrypted, TLS-only) for every alarm; one dashboard for every job."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        jobs: Sequence[Job],
        job_log_groups: Sequence[logs.ILogGroup],
        watchdog_log_group: logs.ILogGroup,
        dead_letter_queue: sqs.IQueue,
        alarm_email: str | None = None,
        name_prefix: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        # A customer-managed key: CloudWatch alarms cannot publish to a topic encrypted with
        # the AWS-managed aws/sns key (its policy cannot be changed to let cloudwatch use it).
        key = kms.Key(
            self, "TopicKey", enable_key_rotation=True, description="Encrypts the scheduled jobs' alarm topic"
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name=f"{name_prefix}Scheduled jobs alarms", master_key=key, enforce_ssl=True
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        action = cw_actions.SnsAction(self.topic)

        self.alarms: list[cw.Alarm] = []

        def alarm(
            alarm_id: str,
            *,
            name: str,
            description: str,
            metric: cw.IMetric,
            threshold: float,
            comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods: int = 1,
            missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
        ) -> cw.Alarm:
            created = cw.Alarm(
                self,
                alarm_id,
                alarm_name=f"{name_prefix}{name}",
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=evaluation_periods,
                datapoints_to_alarm=evaluation_periods,
                treat_missing_data=missing,
            )
            created.add_alarm_action(action)
            created.add_ok_action(action)
            self.alarms.append(created)
            return created

        for job in jobs:
            alarm(
                f"{job.name}-failed",
                name=f"{job.name}-failed",
                description=f"{job.name} failed a run. Logs Insights (dashboard 'Recent failures') shows the "
                f"error; cron_job_logs has the row. Lambda retries twice, then the event goes to "
                f"the dead-letter queue.",
                metric=job_metric(job.name, naming.METRIC_FAILED, period=Duration.minutes(5)),
                threshold=1,
            )
            alarm(
                f"{job.name}-missed",
                name=f"{job.name}-missed-run",
                description=f"{job.name} did not run when its schedule ({job.cron} UTC) said it should have: "
                f"no cron_job_logs row for the occurrence. Check the rule is enabled, the "
                f"dead-letter queue, and the function's throttles; run it by hand for that as_of.",
                metric=job_metric(job.name, naming.METRIC_MISSED, statistic="Maximum", period=Duration.minutes(15)),
                threshold=1,
            )
        alarm(
            "dead-letter-queue",
            name="scheduled-jobs-dead-letter-queue",
            description="A scheduled event could not be delivered, or a run failed after all its retries. "
            "Read the message (it names the function and the event), fix, run by hand, "
            "then purge the queue.",
            metric=dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=Duration.minutes(5)
            ),
            threshold=1,
        )
        heartbeat = cw.Metric(
            namespace=naming.METRICS_NAMESPACE,
            metric_name=METRIC_HEARTBEAT,
            dimensions_map={"service": naming.SERVICE},
            statistic="Sum",
            period=Duration.minutes(15),
        )
        alarm(
            "watchdog-silent",
            name="scheduled-jobs-watchdog-silent",
            description="The missed-run watchdog has not reported for 30 minutes (it failed, cannot reach "
            "the database, or its rule is disabled): missed runs would go unnoticed. "
            "See the watchdog function's logs.",
            metric=heartbeat,
            threshold=1,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=2,
            missing=cw.TreatMissingData.BREACHING,
        )

        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=f"{name_prefix}scheduled-jobs", default_interval=Duration.days(7)
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=6),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Missed runs (watchdog)",
                width=8,
                height=6,
                left=[
                    job_metric(
                        job.name, naming.METRIC_MISSED, statistic="Maximum", period=Duration.minutes(15), label=job.name
                    )
                    for job in jobs
                ],
            ),
            cw.GraphWidget(
                title="Dead-letter queue: messages",
                width=8,
                height=6,
                left=[
                    dead_letter_queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=Duration.minutes(5)
                    )
                ],
            ),
            cw.GraphWidget(title="Watchdog heartbeat", width=8, height=6, left=[heartbeat]),
        )
        self.dashboard.add_widgets(
            cw.LogQueryWidget(
                title="Recent failures (all jobs)",
                width=24,
                height=8,
                log_group_names=[group.log_group_name for group in [*job_log_groups, watchdog_log_group]],
                query_lines=FAILURES_QUERY,
            )
        )
        for job in jobs:
            self.dashboard.add_widgets(
                cw.TextWidget(markdown=f"### {job.name}\n`{job.cron}` UTC: {job.description}", width=24, height=2),
                cw.GraphWidget(
                    title=f"{job.name}: runs",
                    width=8,
                    height=6,
                    stacked=True,
                    left=[
                        job_metric(job.name, naming.METRIC_SUCCEEDED, label="succeeded"),
                        job_metric(job.name, naming.METRIC_FAILED, label="failed"),
                        job_metric(job.name, naming.METRIC_SKIPPED, label="skipped"),
                    ],
                ),
                cw.GraphWidget(
                    title=f"{job.name}: duration (ms)",
                    width=8,
                    height=6,
                    left=[
                        job_metric(job.name, naming.METRIC_DURATION, statistic="p50", label="p50"),
                        job_metric(job.name, naming.METRIC_DURATION, statistic="p99", label="p99"),
                    ],
                ),
                cw.GraphWidget(
                    title=f"{job.name}: summary counts",
                    width=8,
                    height=6,
                    left=[job_metric(job.name, key, label=key) for key in job.summary_keys],
                ),
            )
