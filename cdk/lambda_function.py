"""The settings every function of the app shares, in one place."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk.database_access import DatabaseAccess
from cdk.nag import acknowledge
from shared import naming

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64

POWERTOOLS_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": naming.SERVICE,
    "POWERTOOLS_METRICS_NAMESPACE": naming.METRICS_NAMESPACE,
    "POWERTOOLS_LOG_LEVEL": "INFO",
}

_VPC_ACCESS = "service-role/AWSLambdaVPCAccessExecutionRole"


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    code: lambda_.Code,
    handler: str,
    function_name: str | None,
    description: str,
    memory_mb: int,
    timeout_s: int,
    database: DatabaseAccess,
    log_retention: logs.RetentionDays,
    environment: dict[str, str] | None = None,
    secret: secretsmanager.ISecret | None = None,
    **function_props: object,
) -> lambda_.Function:
    """A Python 3.13 arm64 function with its own log group, X-Ray tracing, Powertools settings,
    read access to one database secret only (``secret``, by default the jobs' secret), and the
    database's network placement.

    Its role is made here rather than by CDK so that logging is granted on its own log group
    (instead of the AWSLambdaBasicExecutionRole managed policy, which allows any log group).
    """
    secret = secret or database.secret
    log_group = logs.LogGroup(
        scope, f"{construct_id}Logs", retention=log_retention, removal_policy=RemovalPolicy.RETAIN
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Runs {function_name or construct_id}",
    )
    log_group.grant_write(role)
    if database.in_vpc:
        role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(_VPC_ACCESS))
    function = lambda_.Function(
        scope,
        construct_id,
        function_name=function_name,
        description=description[:256],
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=code,
        memory_size=memory_mb,
        timeout=Duration.seconds(timeout_s),
        role=role,
        log_group=log_group,
        tracing=lambda_.Tracing.ACTIVE,
        environment={
            "DATABASE_SECRET_ARN": secret.secret_arn,
            **POWERTOOLS_ENVIRONMENT,
            **(environment or {}),
        },
        **database.function_props(),
        **function_props,  # type: ignore[arg-type]
    )
    function.node.add_dependency(log_group)
    database.grant_read(function, secret)
    acknowledge(
        function,
        "AwsSolutions-L1",
        "The project pins python3.13 deliberately: the bundled binary wheels (psycopg-binary, "
        "pydantic-core) are fetched for cp313 (cdk/bundling.py) and the code is tested on 3.13. "
        "Moving to a newer runtime is an upgrade of RUNTIME and bundling.PYTHON_VERSION together.",
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
        "resource-level permissions, so CDK grants them on '*'. Nothing else in this role is wildcarded.",
    )
    if database.in_vpc:
        acknowledge(
            role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{_VPC_ACCESS}]",
            "AWSLambdaVPCAccessExecutionRole is the AWS-maintained minimum for a function in a VPC "
            "(create/describe/delete its network interfaces), whose actions take no resource ARNs.",
        )
    return function
