"""Monitoring: the dashboard, the alarms and the SNS topic they notify."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk.dead_letter_queue import DeadLetterQueue
from cdk.nag import acknowledge
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


@dataclass(frozen=True)
class MonitoredJob:
    """What Monitoring watches of one job: its registry entry, function and log group."""

    job: Job
    function: lambda_.IFunction
    log_group: logs.ILogGroup


class Monitoring(Construct):
    """One SNS topic (KMS-encrypted, TLS-only) for every alarm; one dashboard for every job."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        jobs: Sequence[MonitoredJob],
        watchdog_log_group: logs.ILogGroup,
        dead_letter_queue: DeadLetterQueue,
        alarm_email: str | None = None,
        name_prefix: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = name_prefix
        self.topic = self._topic(alarm_email)
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []
        for monitored in jobs:
            self._job_alarms(monitored)
        self._dlq_alarm(dead_letter_queue)
        self._watchdog_alarm()
        self._allow_alarms_to_publish()
        self.dashboard = self._dashboard(jobs, watchdog_log_group, dead_letter_queue)

    def _topic(self, alarm_email: str | None) -> sns.Topic:
        # A customer-managed key: CloudWatch alarms cannot publish to a topic encrypted with
        # the AWS-managed aws/sns key (its policy cannot be changed to let cloudwatch use it).
        # Deleted with the stack (after a 7-day wait): it encrypts nothing but alarm messages in flight.
        key = kms.Key(
            self,
            "TopicKey",
            enable_key_rotation=True,
            description="Encrypts the scheduled jobs' alarm topic",
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        topic = sns.Topic(
            self, "AlarmTopic", display_name=f"{self._prefix}Scheduled jobs alarms", master_key=key, enforce_ssl=True
        )
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
            acknowledge(
                topic,
                "Serverless-SNSRedrivePolicy",
                "The only subscription is the operator's e-mail: an alarm notification that cannot be delivered "
                "leaves the alarm's state in CloudWatch and on the dashboard, and a queue of undelivered alarm "
                "mails would itself need watching.",
            )
        return topic

    def _allow_alarms_to_publish(self) -> None:
        """CloudWatch may publish to the topic for this stack's alarms, and no others."""
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStacksAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [alarm.alarm_arn for alarm in self.alarms]}},
            )
        )

    def _alarm(
        self,
        name: str,
        *,
        description: str,
        metric: cw.IMetric,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods: int = 1,
        missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
        alarm_id: str | None = None,
    ) -> cw.Alarm:
        """An alarm at threshold 1 that notifies the topic when it fires and when it clears."""
        alarm = cw.Alarm(
            self,
            alarm_id or name,
            alarm_name=f"{self._prefix}{name}",
            alarm_description=description,
            metric=metric,
            threshold=1,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)
        return alarm

    def _job_alarms(self, monitored: MonitoredJob) -> None:
        job = monitored.job
        self._alarm(
            f"{job.name}-failed",
            description=f"{job.name} failed a run (or could not start one: secret, connection, credentials). "
            "Logs Insights (dashboard 'Recent failures') shows the error; cron_job_logs has the row of a run "
            "that started. Lambda retries twice, then the event goes to the dead-letter queue.",
            metric=job_metric(job.name, naming.METRIC_FAILED, period=Duration.minutes(5)),
        )
        self._alarm(
            f"{job.name}-missed-run",
            alarm_id=f"{job.name}-missed",
            description=f"{job.name} did not run when its schedule ({job.cron} UTC) said it should have: "
            "no cron_job_logs row for the occurrence. Check the rule is enabled, the "
            "dead-letter queue, and the function's throttles; run it by hand for that as_of.",
            metric=job_metric(job.name, naming.METRIC_MISSED, statistic="Maximum", period=Duration.minutes(15)),
        )
        self._alarm(
            f"{job.name}-auto-paused",
            description=f"{job.name} failed {job.pause_after_failures} occurrences in a row and paused itself "
            "(its scheduled deliveries are skipped; the watchdog expects nothing). "
            "jobctl describe shows the reason; fix the cause, then jobctl resume --catch-up.",
            metric=job_metric(job.name, naming.METRIC_AUTO_PAUSED, period=Duration.minutes(5)),
        )
        self._alarm(
            f"{job.name}-errors",
            description=f"The {job.name} function raised (AWS/Lambda Errors): a failed run, "
            "or a crash before the runner could count it "
            "(import error, out of memory, timeout). See the function's log group.",
            metric=monitored.function.metric_errors(statistic="Sum", period=Duration.minutes(5)),
        )

    def _dlq_alarm(self, dead_letter_queue: DeadLetterQueue) -> None:
        self._alarm(
            "scheduled-jobs-dead-letter-queue",
            alarm_id="dead-letter-queue",
            description="A scheduled event could not be delivered, or a run failed after all its retries. "
            "Read the message (it names the function and the event), fix, run by hand, "
            "then purge the queue.",
            metric=dead_letter_queue.metric_messages(),
        )

    def _watchdog_alarm(self) -> None:
        self._alarm(
            "scheduled-jobs-watchdog-silent",
            alarm_id="watchdog-silent",
            description="The missed-run watchdog has not reported for 30 minutes (it failed, cannot reach "
            "the database, or its rule is disabled): missed runs would go unnoticed. "
            "See the watchdog function's logs.",
            metric=heartbeat_metric(),
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=2,
            missing=cw.TreatMissingData.BREACHING,
        )

    def _dashboard(
        self, jobs: Sequence[MonitoredJob], watchdog_log_group: logs.ILogGroup, dead_letter_queue: DeadLetterQueue
    ) -> cw.Dashboard:
        # Dashboard names are account-wide: the region keeps a second region's stack apart.
        dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{self._prefix}scheduled-jobs-{Stack.of(self).region}",
            default_interval=Duration.days(7),
        )
        dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=6))
        missed = [
            job_metric(name, naming.METRIC_MISSED, statistic="Maximum", period=Duration.minutes(15), label=name)
            for name in (m.job.name for m in jobs)
        ]
        dashboard.add_widgets(
            cw.GraphWidget(title="Missed runs (watchdog)", width=8, height=6, left=missed),
            cw.GraphWidget(
                title="Dead-letter queue: messages", width=8, height=6, left=[dead_letter_queue.metric_messages()]
            ),
            cw.GraphWidget(title="Watchdog heartbeat", width=8, height=6, left=[heartbeat_metric()]),
        )
        dashboard.add_widgets(
            cw.LogQueryWidget(
                title="Recent failures (all jobs)",
                width=24,
                height=8,
                log_group_names=[group.log_group_name for group in [*(m.log_group for m in jobs), watchdog_log_group]],
                query_lines=FAILURES_QUERY,
            )
        )
        for monitored in jobs:
            dashboard.add_widgets(*_job_widgets(monitored))
        return dashboard


def heartbeat_metric() -> cw.Metric:
    return cw.Metric(
        namespace=naming.METRICS_NAMESPACE,
        metric_name=METRIC_HEARTBEAT,
        dimensions_map={"service": naming.SERVICE},
        statistic="Sum",
        period=Duration.minutes(15),
    )


def _job_widgets(monitored: MonitoredJob) -> list[cw.IWidget]:
    """One dashboard row per job: its runs (and the function's errors), duration and summary counts."""
    job = monitored.job
    return [
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
            right=[monitored.function.metric_errors(statistic="Sum", period=GRAPH_PERIOD, label="function errors")],
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
    ]
