"""The deployment's settings, read from CDK context (``cdk.json`` or ``-c key=value``)."""

from __future__ import annotations

import re
from typing import Any, Literal

from constructs import Node
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SECRET_ARN_FORM = "arn:aws:secretsmanager:<region>:<account>:secret:<name>"  # noqa: S105 - a form, no secret
#: The retention periods CloudWatch Logs offers (a subset: the ones worth choosing).
RETENTION_DAYS = (7, 14, 30, 60, 90, 180, 365, 731)


class ContextError(ValueError):
    """A context value the app cannot use; the message says which and how to fix it."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class StackConfig(BaseModel):
    """What an operator may set. Everything is optional: the defaults deploy a working stack.

    Fields are named as in Python; the context keys are their camelCase aliases.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    name_prefix: str = Field("", alias="namePrefix")
    database_secret_arn: str | None = Field(None, alias="databaseSecretArn")
    migrations_secret_arn: str | None = Field(None, alias="migrationsSecretArn")
    database_secret_kms_key_arn: str | None = Field(None, alias="databaseSecretKmsKeyArn")
    vpc_id: str | None = Field(None, alias="vpcId")
    subnet_ids: tuple[str, ...] = Field((), alias="subnetIds")
    security_group_id: str | None = Field(None, alias="securityGroupId")
    alarm_email: str | None = Field(None, alias="alarmEmail")
    log_retention_days: int = Field(90, alias="logRetentionDays")
    architecture: Literal["arm64", "x86_64"] = Field("arm64", alias="architecture")
    skip_bundling: bool = Field(False, alias="skipBundling")
    pg_cron_cutover: bool = Field(False, alias="pgCronCutover")
    """``pgCronCutover``: once the rules exist, unschedule the guide's pg_cron jobs (``jobctl cutover``)."""

    @field_validator("subnet_ids", mode="before")
    @classmethod
    def _list(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):  # -c subnetIds=subnet-a,subnet-b
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return tuple(str(part).strip() for part in value if str(part).strip())

    @field_validator("skip_bundling", "pg_cron_cutover", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        return str(value).strip().lower() in {"1", "true", "yes"}

    @field_validator("architecture", mode="before")
    @classmethod
    def _architecture(cls, value: Any) -> str:
        text = str(value).strip().lower().replace("-", "_")
        if text not in {"arm64", "x86_64"}:
            raise ValueError(f"architecture {value!r}: use arm64 (the default) or x86_64")
        return text

    @field_validator("log_retention_days", mode="before")
    @classmethod
    def _retention(cls, value: Any) -> int:
        text = str(value).strip()
        if not text.isdigit() or int(text) not in RETENTION_DAYS:
            raise ValueError(f"logRetentionDays {text}: use one of {', '.join(map(str, RETENTION_DAYS))}")
        return int(text)

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,15}", value):
            raise ValueError(
                f"namePrefix {value!r}: use up to 16 lower-case letters, digits and dashes, e.g. 'staging-'"
            )
        return value

    @field_validator("database_secret_arn", "migrations_secret_arn")
    @classmethod
    def _secret_arn(cls, value: str | None, info: Any) -> str | None:
        if value and not _SECRET_ARN.match(value):
            key = "databaseSecretArn" if info.field_name == "database_secret_arn" else "migrationsSecretArn"
            raise ValueError(f"{key} {value!r} is not a Secrets Manager secret ARN ({_SECRET_ARN_FORM})")
        return value

    @field_validator("database_secret_kms_key_arn")
    @classmethod
    def _kms_key_arn(cls, value: str | None) -> str | None:
        if value and not _KMS_KEY_ARN.match(value):
            raise ValueError(
                f"databaseSecretKmsKeyArn {value!r} is not a KMS key ARN "
                "(arn:aws:kms:<region>:<account>:key/<key id>; an alias ARN cannot be granted)"
            )
        return value

    @field_validator("vpc_id", "security_group_id", "subnet_ids")
    @classmethod
    def _resource_ids(cls, value: Any, info: Any) -> Any:
        label, prefix = {
            "vpc_id": ("vpcId", "vpc"),
            "security_group_id": ("securityGroupId", "sg"),
            "subnet_ids": ("subnetIds", "subnet"),
        }[info.field_name]
        for item in value if isinstance(value, tuple) else (value,):
            if item and not re.fullmatch(rf"{prefix}-[0-9a-f]{{8,17}}", item):
                raise ValueError(f"{label} {item!r} is not an id of the form {prefix}-0123456789abcdef0")
        return value

    @field_validator("alarm_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value and not _EMAIL.match(value):
            raise ValueError(f"alarmEmail {value!r} is not an e-mail address")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> StackConfig:
        if self.migrations_secret_arn and not self.database_secret_arn:
            raise ValueError(
                "migrationsSecretArn (the schema owner's connection, for migrations only) needs "
                "databaseSecretArn (the job user's connection, for the jobs and the watchdog)"
            )
        if self.database_secret_kms_key_arn and not self.database_secret_arn:
            raise ValueError(
                "databaseSecretKmsKeyArn (the key that encrypts your secret) needs databaseSecretArn: "
                "the secret the stack creates uses Secrets Manager's own key"
            )
        if (self.subnet_ids or self.security_group_id) and not self.vpc_id:
            raise ValueError("subnetIds and securityGroupId need vpcId")
        if self.vpc_id and not self.subnet_ids:
            raise ValueError(
                "vpcId needs subnetIds: the private subnets that reach the database "
                "(and Secrets Manager, CloudWatch through a NAT gateway or VPC endpoints)"
            )
        return self

    @classmethod
    def from_context(cls, node: Node) -> StackConfig:
        """The settings from the app's context; a bad value raises :class:`ContextError`."""
        values = {}
        for field in cls.model_fields.values():
            key = field.alias or ""
            value = node.try_get_context(key)
            if not isinstance(value, list | tuple):
                value = _text(value)
            if value is not None:
                values[key] = value
        return cls.parse(values)

    @classmethod
    def parse(cls, values: dict[str, Any]) -> StackConfig:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            message = str(first.get("ctx", {}).get("error") or first["msg"])
            raise ContextError(message) from None
