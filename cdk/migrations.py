"""Migrations on deploy: a custom resource that runs the project's migration runner."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import cast

from aws_cdk import CfnElement, CustomResource, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk.lambda_function import FunctionDefaults, python_function
from cdk.nag import acknowledge
from shared import exposure, migrations

HANDLER = "functions.migrate.handler"
TIMEOUT_S = 600  # a migration that builds an index on a large table takes minutes
#: The ``Action`` property of the pg_cron cutover resource (functions/migrate.py dispatches on it).
CUTOVER_ACTION = "pg-cron-cutover"


def sql_hash() -> str:
    """A digest of every file the migration runner applies (versioned, repeatable, the lockdown).

    It is the custom resource's property: any SQL change changes it, so CloudFormation
    sends an Update and the deploy migrates. Query files (``sql/queries``) are not migrations.
    """
    digest = hashlib.sha256()
    for directory in (migrations.MIGRATIONS_DIR, migrations.FUNCTIONS_DIR):
        for path in sorted(directory.glob("*.sql")):
            digest.update(f"{directory.name}/{path.name}".encode() + b"\0" + path.read_bytes() + b"\0")
    # the lockdown that closes the jobs layer to Supabase's API roles runs after every migration
    digest.update(b"lockdown.sql\0" + exposure.LOCKDOWN_SQL.read_bytes())
    return digest.hexdigest()


class SchemaMigrations(Construct):
    """Applies pending migrations on every deploy whose SQL changed; never undoes any on delete."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        defaults: FunctionDefaults,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = python_function(
            self,
            "Function",
            defaults=defaults,
            handler=HANDLER,
            function_name=f"{defaults.name_prefix}scheduled-jobs-migrate",
            description="Applies the scheduled jobs' pending SQL migrations (custom resource; "
            'run by hand with {"RequestType": "Update"})',
            memory_mb=256,
            timeout_s=TIMEOUT_S,
            secret=defaults.database.migrations_secret,  # the schema owner's, when the jobs have their own user
            environment={"DATABASE_SECRET_CREATED_BY_STACK": "true" if defaults.database.created_secret else "false"},
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "Invoked synchronously by the custom-resource provider: a failure fails the deploy, nothing is queued.",
        )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function,
            log_group=logs.LogGroup(
                # Deleted with the stack: only the framework's request/response traces.
                self,
                "ProviderLogs",
                retention=defaults.log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            ),
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::SchemaMigrations",
            properties={"SqlHash": sql_hash()},
        )
        self._service_token = provider.service_token
        self._acknowledge_provider(provider)

    def _acknowledge_provider(self, provider: cr.Provider) -> None:
        """CDK's provider framework function (not ours): its cdk-nag findings, each with its reason."""
        acknowledge(
            provider,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's custom-resource provider framework function (not ours) logs with AWSLambdaBasicExecutionRole.",
        )
        stack = Stack.of(self)
        function_id = stack.resolve(stack.get_logical_id(cast(CfnElement, self.function.node.default_child)))
        acknowledge(
            provider,
            f"AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
            "The provider framework may invoke any version of the migrate function "
            "(lambda:InvokeFunction on '<its arn>:*'): that one function, nothing else.",
        )
        for rule in ("Serverless-LambdaDLQ", "Serverless-LambdaDefaultMemorySize", "Serverless-LambdaTracing"):
            acknowledge(
                provider,
                rule,
                "CDK's custom-resource provider framework function (not ours): aws-cdk-lib sets its memory, "
                "tracing and synchronous invocation by CloudFormation; it only relays to the migrate function.",
            )
        acknowledge(
            provider,
            "AwsSolutions-L1",
            "The provider framework function's Node.js runtime is chosen and kept current by "
            "aws-cdk-lib; upgrading the library upgrades it.",
        )

    def add_pg_cron_cutover(self, *, after: Sequence[Construct]) -> CustomResource:
        """``pgCronCutover``: the same function unschedules the guide's pg_cron jobs once ``after`` exist.

        A resource of its own, created after the rules (which themselves wait for the
        migrations), so pg_cron hands over only when EventBridge can take over. Deleting it
        (the option turned off, or the stack destroyed, before the rules go) undoes the
        cutover: pg_cron schedules the jobs again. See docs/moving-from-pg-cron.md.
        """
        resource = CustomResource(
            self,
            "PgCronCutover",
            service_token=self._service_token,
            resource_type="Custom::PgCronCutover",
            properties={"Action": CUTOVER_ACTION, "SqlHash": sql_hash()},
        )
        for construct in after:
            resource.node.add_dependency(construct)
        return resource
