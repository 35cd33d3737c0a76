"""The CDK app entry point (``cdk.json``: ``python -m cdk.app``).

cdk-nag's AwsSolutions and Serverless checks run on every synth; any finding not acknowledged
(with a reason, next to the resource that causes it) is an error and fails the synth.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from cdk.config import StackConfig
from cdk.stack import ScheduledJobsStack

STACK_NAME = "ScheduledJobs"


def build(context: dict[str, Any] | None = None) -> tuple[App, ScheduledJobsStack]:
    """The app and its stack, with cdk-nag applied (tests build it the same way)."""
    app = App(context=context) if context is not None else App()
    config = StackConfig.from_context(app.node)
    stack = ScheduledJobsStack(
        app,
        f"{config.name_prefix}{STACK_NAME}",
        config=config,
        description="Language-exchange scheduled jobs: Lambda functions on EventBridge schedules, "
        "with migrations, dashboard and alarms",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True), ServerlessChecks(app, verbose=True))
    return app, stack


def main() -> None:
    app, _ = build()
    app.synth()


if __name__ == "__main__":
    main()
