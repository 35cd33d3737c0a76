"""The settings every function of the app shares, in one place."""

from __future__ import annotations

from dataclasses import dataclass

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
#: ``-c architecture=...`` -> the functions' architecture (the bundling follows it).
ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}

POWERTOOLS_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": naming.SERVICE,
    "POWERTOOLS_METRICS_NAMESPACE": naming.METRICS_NAMESPACE,
    "POWERTOOLS_LOG_LEVEL": "INFO",
}

_VPC_ACCESS = "service-role/AWSLambdaVPCAccessExecutionRole"


@dataclass(frozen=True)
class FunctionDefaults:
    """What every function of the stack shares: the code asset, the database, logs, names."""

    code: lambda_.Code
    database: DatabaseAccess
    log_retention: logs.RetentionDays
    architecture: str = "arm64"
    name_prefix: str = ""


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    defaults: FunctionDefaults,
    handler: str,
    function_name: str | None,
    description: str,
    memory_mb: int,
    timeout_s: int,
    environment: dict[str, str] | None = None,
    secret: secretsmanager.ISecret | None = None,
    **function_props: object,
) -> lambda_.Function:
    """A Python 3.13 function (arm64 unless configured) with its own log group, X-Ray tracing, Powertools settings,
    read access to one database secret only (``secret``, by default the jobs' secret), and the
    database's network placement.

    Its role is made here rather than by CDK so that logging is granted on its own log group
    (instead of the AWSLambdaBasicExecutionRole managed policy, which allows any log group).
    """
    database = defaults.database
    secret = secret or database.secret
    # Kept when the stack is destroyed: the run history's log lines (see docs/deploy.md).
    log_group = logs.LogGroup(
        scope, f"{construct_id}Logs", retention=defaults.log_retention, removal_policy=RemovalPolicy.RETAIN
    )
    role = _role(scope, construct_id, function_name, log_group, in_vpc=database.in_vpc)
    function = lambda_.Function(
        scope,
        construct_id,
        function_name=function_name,
        description=description[:256],
        runtime=RUNTIME,
        architecture=ARCHITECTURES[defaults.architecture],
        handler=handler,
        code=defaults.code,
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
    database.grant_read(function, secret)
    _acknowledge(function, role, in_vpc=database.in_vpc)
    return function


def _role(
    scope: Construct, construct_id: str, function_name: str | None, log_group: logs.LogGroup, *, in_vpc: bool
) -> iam.Role:
    """The function's own role: write to its own log group (and the VPC's network interfaces)."""
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Runs {function_name or construct_id}",
    )
    log_group.grant_write(role)
    if in_vpc:
        role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(_VPC_ACCESS))
    return role


def _acknowledge(function: lambda_.Function, role: iam.Role, *, in_vpc: bool) -> None:
    """The cdk-nag findings every function of ours has, each with its reason."""
    pinned = (
        "The project pins python3.13 deliberately: the bundled binary wheels (psycopg-binary, "
        "pydantic-core) are fetched for cp313 and the bytecode is compiled by CPython 3.13 (cdk/bundling.py); "
        "the code is tested on 3.13. Moving to a newer runtime is an upgrade of RUNTIME and "
        "bundling.PYTHON_VERSION together."
    )
    acknowledge(function, "AwsSolutions-L1", pinned)
    acknowledge(function, "Serverless-LambdaLatestVersion", pinned)
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
        "resource-level permissions, so CDK grants them on '*'. Nothing else in this role is wildcarded.",
    )
    if in_vpc:
        acknowledge(
            role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{_VPC_ACCESS}]",
            "AWSLambdaVPCAccessExecutionRole is the AWS-maintained minimum for a function in a VPC "
            "(create/describe/delete its network interfaces), whose actions take no resource ARNs.",
        )
