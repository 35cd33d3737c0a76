"""The deployment's settings, read from CDK context (``cdk.json`` or ``-c key=value``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from constructs import Node

_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ContextError(ValueError):
    """A context value the app cannot use; the message says which and how to fix it."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # -c subnetIds=subnet-a,subnet-b
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(part).strip() for part in value if str(part).strip())


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class StackConfig:
    """What an operator may set. Everything is optional: the defaults deploy a working stack."""

    name_prefix: str = ""
    database_secret_arn: str | None = None
    migrations_secret_arn: str | None = None
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    security_group_id: str | None = None
    alarm_email: str | None = None
    log_retention_days: int = 90
    skip_bundling: bool = False
    pg_cron_cutover: bool = False
    """``pgCronCutover``: once the rules exist, unschedule the guide's pg_cron jobs (``jobctl cutover``)."""

    def __post_init__(self) -> None:
        if self.name_prefix and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,15}", self.name_prefix):
            raise ContextError(
                f"namePrefix {self.name_prefix!r}: use up to 16 lower-case letters, digits and dashes, e.g. 'staging-'"
            )
        if self.database_secret_arn and not _SECRET_ARN.match(self.database_secret_arn):
            raise ContextError(
                f"databaseSecretArn {self.database_secret_arn!r} is not a Secrets Manager "
                "secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
            )
        if self.migrations_secret_arn and not _SECRET_ARN.match(self.migrations_secret_arn):
            raise ContextError(
                f"migrationsSecretArn {self.migrations_secret_arn!r} is not a Secrets Manager "
                "secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
            )
        if self.migrations_secret_arn and not self.database_secret_arn:
            raise ContextError(
                "migrationsSecretArn (the schema owner's connection, for migrations only) needs "
                "databaseSecretArn (the job user's connection, for the jobs and the watchdog)"
            )
        for label, value, prefix in (
            ("vpcId", self.vpc_id, "vpc"),
            ("securityGroupId", self.security_group_id, "sg"),
            *(("subnetIds", s, "subnet") for s in self.subnet_ids),
        ):
            if value and not re.fullmatch(rf"{prefix}-[0-9a-f]{{8,17}}", value):
                raise ContextError(f"{label} {value!r} is not an id of the form {prefix}-0123456789abcdef0")
        if (self.subnet_ids or self.security_group_id) and not self.vpc_id:
            raise ContextError("subnetIds and securityGroupId need vpcId")
        if self.vpc_id and not self.subnet_ids:
            raise ContextError(
                "vpcId needs subnetIds: the private subnets that reach the database "
                "(and Secrets Manager, CloudWatch through a NAT gateway or VPC endpoints)"
            )
        if self.alarm_email and not _EMAIL.match(self.alarm_email):
            raise ContextError(f"alarmEmail {self.alarm_email!r} is not an e-mail address")

    @classmethod
    def from_context(cls, node: Node) -> StackConfig:
        get = node.try_get_context
        retention = _text(get("logRetentionDays"))
        return cls(
            name_prefix=_text(get("namePrefix")) or "",
            database_secret_arn=_text(get("databaseSecretArn")),
            migrations_secret_arn=_text(get("migrationsSecretArn")),
            vpc_id=_text(get("vpcId")),
            subnet_ids=_list(get("subnetIds")),
            security_group_id=_text(get("securityGroupId")),
            alarm_email=_text(get("alarmEmail")),
            log_retention_days=int(retention) if retention else 90,
            skip_bundling=_flag(get("skipBundling")),
            pg_cron_cutover=_flag(get("pgCronCutover")),
        )
