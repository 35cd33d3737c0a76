"""CDK context validation: a wrong setting fails the synth with a message that says what to fix."""

from __future__ import annotations

import pytest
from constructs import Construct

from cdk.config import ContextError, StackConfig


def config_from(**context) -> StackConfig:
    from aws_cdk import App

    app: Construct = App(context=context)
    return StackConfig.from_context(app.node)


def test_defaults():
    assert config_from() == StackConfig()


def test_command_line_values_are_parsed():
    config = config_from(
        subnetIds="subnet-0000000a, subnet-0000000b",
        vpcId="vpc-00000001",
        skipBundling="true",
        logRetentionDays="30",
        namePrefix="dev-",
    )
    assert config.subnet_ids == ("subnet-0000000a", "subnet-0000000b")
    assert config.skip_bundling is True
    assert config.log_retention_days == 30
    assert config.name_prefix == "dev-"


def test_architecture_and_kms_key_are_read():
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobs"
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    config = config_from(architecture="X86_64", databaseSecretArn=secret, databaseSecretKmsKeyArn=key)
    assert (config.architecture, config.database_secret_kms_key_arn) == ("x86_64", key)
    assert config_from().architecture == "arm64"


def test_migrations_secret_is_read():
    jobs = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobs"
    owner = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:owner"
    config = config_from(databaseSecretArn=jobs, migrationsSecretArn=f" {owner} ")
    assert (config.database_secret_arn, config.migrations_secret_arn) == (jobs, owner)


def test_cdk_json_lists_are_accepted():
    config = config_from(vpcId="vpc-00000001", subnetIds=["subnet-0000000a", "subnet-0000000b"])
    assert config.subnet_ids == ("subnet-0000000a", "subnet-0000000b")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"vpcId": "vpc-00000001"}, "vpcId needs subnetIds"),
        ({"subnetIds": "subnet-0000000a"}, "need vpcId"),
        ({"securityGroupId": "sg-00000001"}, "need vpcId"),
        ({"vpcId": "my-vpc", "subnetIds": "subnet-0000000a"}, "vpcId 'my-vpc' is not an id"),
        ({"vpcId": "vpc-00000001", "subnetIds": "subnet-a"}, "subnetIds 'subnet-a' is not an id"),
        ({"databaseSecretArn": "my-secret"}, "not a Secrets Manager secret ARN"),
        (
            {
                "databaseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobs",
                "migrationsSecretArn": "owner-secret",
            },
            "migrationsSecretArn 'owner-secret' is not a Secrets Manager",
        ),
        (
            {"migrationsSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:owner"},
            "migrationsSecretArn .* needs databaseSecretArn",
        ),
        ({"alarmEmail": "ops"}, "not an e-mail address"),
        ({"architecture": "arm"}, "architecture 'arm': use arm64 .* or x86_64"),
        ({"logRetentionDays": "45"}, "logRetentionDays 45: use one of 7, 14, 30"),
        ({"logRetentionDays": "ninety"}, "logRetentionDays ninety: use one of"),
        (
            {
                "databaseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobs",
                "databaseSecretKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:alias/jobs",
            },
            "databaseSecretKmsKeyArn .* is not a KMS key ARN .*an alias ARN cannot be granted",
        ),
        (
            {"databaseSecretKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab"},
            "databaseSecretKmsKeyArn .* needs databaseSecretArn",
        ),
        ({"namePrefix": "Staging_"}, "namePrefix"),
    ],
)
def test_invalid_context_is_refused(context, message):
    with pytest.raises(ContextError, match=message):
        config_from(**context)
