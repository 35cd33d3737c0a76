"""The dead-letter queue: every undeliverable event and every run that failed all its retries."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.nag import acknowledge

RETENTION = Duration.days(14)  # SQS's maximum


class DeadLetterQueue(Construct):
    """One SQS queue (SSE, TLS only), kept when the stack is destroyed: it may hold the only
    record of an occurrence that never ran."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # "Default": the queue keeps the logical id it had when the stack built it directly.
        self.queue = sqs.Queue(
            self,
            "Default",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        reason = (
            "This queue is itself the dead-letter queue (EventBridge target DLQ and Lambda on-failure "
            "destination); an operator reads and purges it, nothing consumes it."
        )
        acknowledge(self.queue, "AwsSolutions-SQS3", reason)
        acknowledge(self.queue, "Serverless-SQSRedrivePolicy", reason)

    def metric_messages(self) -> cw.Metric:
        """The messages waiting (the alarm and the dashboard graph read this one)."""
        return self.queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=Duration.minutes(5))
