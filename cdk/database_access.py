"""Database access: the connection secret(s) the functions read, and the optional VPC placement."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import Fn, RemovalPolicy, SecretValue
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk.config import StackConfig
from cdk.nag import acknowledge
from shared.naming import SECRET_PLACEHOLDER

# A complete secret ARN ends with the six random characters Secrets Manager appends.
_COMPLETE_ARN = re.compile(r"-[A-Za-z0-9]{6}$")


class DatabaseAccess(Construct):
    """The connection secret (existing, or created for the operator to fill in) and the network.

    With ``secret_arn`` the functions read that secret (the connection URL, or RDS-style JSON).
    Without it the stack creates an empty secret: the operator stores the URL in it after the
    first deploy. With ``migrations_secret_arn`` too (the schema owner's connection), the
    migrate function reads only that one and the job and watchdog functions only ``secret_arn``
    (a login user in the ``scheduled_jobs_runner`` role); without it, every function reads
    ``secret_arn``, so the jobs run as whoever migrates (the owner).
    With ``vpc_id`` + ``subnet_ids`` (and optionally ``security_group_id``) every
    function runs in those subnets. With ``database_secret_kms_key_arn`` every reader of a
    secret may decrypt with that key (through Secrets Manager only).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        secret_arn, migrations_secret_arn = config.database_secret_arn, config.migrations_secret_arn
        self.kms_key_arn = config.database_secret_kms_key_arn
        self.created_secret = secret_arn is None
        if secret_arn is None:
            # It holds a fixed placeholder until the operator stores the URL: the migrate function
            # recognises exactly that value (and nothing else) as "not filled in yet". Kept when
            # the stack is destroyed: it holds the operator's connection URL.
            secret = secretsmanager.Secret(
                self,
                "Secret",
                description="Scheduled jobs: the Postgres connection URL (postgresql://user:password@host:port/db"
                "?sslmode=require) or RDS-style JSON. Fill in after the first deploy.",
                secret_string_value=SecretValue.unsafe_plain_text(SECRET_PLACEHOLDER),
                removal_policy=RemovalPolicy.RETAIN,
            )
            acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "The secret holds a connection URL issued by the database provider (Supabase, RDS); "
                "its password is rotated there, and the functions re-read the secret within 5 minutes "
                "(and at once after an authentication failure). A rotation Lambda here would not know "
                "how to change a Supabase password.",
            )
            self.secret: secretsmanager.ISecret = secret
        else:
            self.secret = self._existing("Secret", secret_arn)
        # The secret the migrate function reads: the owner's when split, else the same one.
        self.split = bool(migrations_secret_arn) and migrations_secret_arn != secret_arn
        self.migrations_secret: secretsmanager.ISecret = (
            self._existing("MigrationsSecret", migrations_secret_arn)
            if self.split and migrations_secret_arn
            else self.secret
        )

        self.vpc: ec2.IVpc | None = None
        self.subnets: list[ec2.ISubnet] = []
        self.security_groups: list[ec2.ISecurityGroup] = []
        if config.vpc_id:
            self._place_in_vpc(config)

    def _place_in_vpc(self, config: StackConfig) -> None:
        assert config.vpc_id is not None
        subnet_ids = config.subnet_ids
        self.subnets = [ec2.Subnet.from_subnet_id(self, f"Subnet{i}", sid) for i, sid in enumerate(subnet_ids)]
        # The imported VPC needs one availability zone per subnet (a stack without an account
        # and region knows only two by name). They are never read: the functions get the
        # explicit subnets above, so each zone is left as an unresolved Fn::GetAZs element.
        zones = [Fn.select(i, Fn.get_azs()) for i in range(len(subnet_ids))]
        self.vpc = ec2.Vpc.from_vpc_attributes(
            self, "Vpc", vpc_id=config.vpc_id, availability_zones=zones, private_subnet_ids=list(subnet_ids)
        )
        acknowledge(
            self,
            "Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId",
            "The subnets are imported by id only; nothing here reads their route tables.",
        )
        if config.security_group_id:
            group: ec2.ISecurityGroup = ec2.SecurityGroup.from_security_group_id(
                self, "SecurityGroup", config.security_group_id, mutable=False
            )
        else:
            group = ec2.SecurityGroup(
                self,
                "SecurityGroup",
                vpc=self.vpc,
                allow_all_outbound=True,
                description="Scheduled jobs Lambda functions: outbound to the database and AWS APIs",
            )
        self.security_groups = [group]

    def _existing(self, construct_id: str, arn: str) -> secretsmanager.ISecret:
        if _COMPLETE_ARN.search(arn):
            return secretsmanager.Secret.from_secret_complete_arn(self, construct_id, arn)
        return secretsmanager.Secret.from_secret_partial_arn(self, construct_id, arn)

    @property
    def in_vpc(self) -> bool:
        return self.vpc is not None

    def function_props(self) -> dict[str, Any]:
        """The keyword arguments that place a ``lambda_.Function`` on the database's network."""
        if self.vpc is None:
            return {}
        return {
            "vpc": self.vpc,
            "vpc_subnets": ec2.SubnetSelection(subnets=self.subnets),
            "security_groups": self.security_groups,
        }

    def grant_read(self, grantee: iam.IGrantable, secret: secretsmanager.ISecret | None = None) -> None:
        """GetSecretValue and DescribeSecret on one secret (the jobs' by default), nothing broader;
        and kms:Decrypt on the operator's key, when given, for Secrets Manager's calls only."""
        (secret or self.secret).grant_read(grantee)
        if self.kms_key_arn:
            region = self.kms_key_arn.split(":")[3]  # a secret's key lives in the secret's region
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[self.kms_key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
                )
            )
