"""An operator's settings: an existing secret (encrypted with the operator's KMS key), a VPC with
three subnets, a name prefix, an alarm e-mail, x86_64."""

from __future__ import annotations

import pytest
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from cdk import cfn_lint
from shared import naming
from shared.registry import JOBS
from tests.infrastructure.conftest import Synthesized, synthesize

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/jobs-db-AbCdEf"
PARTIAL_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/jobs-db"
VPC, SG = "vpc-0123456789abcdef0", "sg-0ccccccccccccccc3"
SUBNET_A, SUBNET_B, SUBNET_C = "subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0ccccccccccccccc3"
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def synth() -> Synthesized:
    return synthesize(
        databaseSecretArn=SECRET_ARN,
        vpcId=VPC,
        subnetIds=f"{SUBNET_A},{SUBNET_B},{SUBNET_C}",  # three: not a multiple of the two AZs CDK knows
        securityGroupId=SG,
        namePrefix="staging-",
        alarmEmail="ops@example.com",
        databaseSecretKmsKeyArn=KMS_KEY,
        architecture="x86_64",
    )


def python_functions(synth: Synthesized) -> dict[str, dict]:
    return {
        k: v["Properties"]
        for k, v in synth.of_type("AWS::Lambda::Function").items()
        if v["Properties"]["Runtime"].startswith("python")
    }


def test_no_secret_is_created_and_every_python_function_reads_the_given_one(synth):
    assert synth.of_type("AWS::SecretsManager::Secret") == {}
    functions = python_functions(synth)
    assert len(functions) == len(JOBS) + 2  # the jobs, the watchdog, the migrate function
    for fn in functions.values():
        assert fn["Environment"]["Variables"]["DATABASE_SECRET_ARN"] == SECRET_ARN


def kms_statements_by_role(synth: Synthesized) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if any(a.startswith("kms:") for a in actions):
                for role in policy["Properties"]["Roles"]:
                    found.setdefault(role["Ref"], []).append(st)
    return found


def test_every_role_that_reads_a_secret_may_decrypt_with_the_operators_key_through_secrets_manager(synth):
    readers = secret_resources_by_role(synth)
    by_role = kms_statements_by_role(synth)
    assert set(by_role) == set(readers) and len(readers) == len(JOBS) + 2
    for statements in by_role.values():
        assert statements == [
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": KMS_KEY,
                "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}},
            }
        ]


def test_x86_64_functions(synth):
    assert {tuple(fn["Architectures"]) for fn in python_functions(synth).values()} == {("x86_64",)}


def test_secret_read_is_granted_on_that_arn_only(synth):
    secret_statements = [
        st
        for p in synth.of_type("AWS::IAM::Policy").values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("secretsmanager:") for a in st["Action"])
    ]
    assert len(secret_statements) == len(JOBS) + 2
    for st in secret_statements:
        assert st == {
            "Effect": "Allow",
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Resource": SECRET_ARN,
        }


def test_every_python_function_runs_in_the_given_subnets_and_security_group(synth):
    for fn in python_functions(synth).values():
        assert fn["VpcConfig"] == {"SubnetIds": [SUBNET_A, SUBNET_B, SUBNET_C], "SecurityGroupIds": [SG]}
    assert synth.of_type("AWS::EC2::SecurityGroup") == {}


def test_names_carry_the_prefix(synth):
    names = {fn["FunctionName"] for fn in python_functions(synth).values()}
    assert names == {naming.function_name(j.name, "staging-") for j in JOBS} | {
        "staging-scheduled-jobs-watchdog",
        "staging-scheduled-jobs-migrate",
    }
    rules = {r["Properties"]["Name"] for r in synth.of_type("AWS::Events::Rule").values()}
    assert rules == {naming.rule_name(j.name, "staging-") for j in JOBS} | {"staging-scheduled-jobs-watchdog-schedule"}
    assert synth.stack.stack_name == "staging-ScheduledJobs"
    ((_, dashboard),) = synth.of_type("AWS::CloudWatch::Dashboard").items()
    assert dashboard["Properties"]["DashboardName"] == {
        "Fn::Join": ["", ["staging-scheduled-jobs-", {"Ref": "AWS::Region"}]]
    }


def test_alarm_email_subscribes_to_the_topic(synth):
    (sub,) = synth.of_type("AWS::SNS::Subscription").values()
    assert sub["Properties"]["Protocol"] == "email"
    assert sub["Properties"]["Endpoint"] == "ops@example.com"


def test_migrate_function_fails_the_deploy_on_a_bad_operator_secret(synth):
    migrate = [fn for fn in python_functions(synth).values() if fn["Handler"] == "functions.migrate.handler"]
    assert migrate[0]["Environment"]["Variables"]["DATABASE_SECRET_CREATED_BY_STACK"] == "false"


def test_zero_cdk_nag_findings_in_a_vpc(synth):
    for pack in (AwsSolutionsChecks(synth.app), ServerlessChecks(synth.app)):
        assert [v.rule_name for v in pack.validate_scope(synth.stack).violations] == []


def test_partial_arn_is_granted_with_secrets_managers_suffix_and_a_security_group_is_created():
    synth = synthesize(databaseSecretArn=PARTIAL_ARN, vpcId=VPC, subnetIds=SUBNET_A)
    resources = {
        st["Resource"]
        for p in synth.of_type("AWS::IAM::Policy").values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("secretsmanager:") for a in st["Action"])
    }
    assert resources == {f"{PARTIAL_ARN}-??????"}
    ((group_id, group),) = synth.of_type("AWS::EC2::SecurityGroup").items()
    assert group["Properties"]["VpcId"] == VPC
    for fn in python_functions(synth).values():
        assert fn["VpcConfig"]["SecurityGroupIds"] == [{"Fn::GetAtt": [group_id, "GroupId"]}]


MIGRATIONS_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/jobs-db-owner-GhIjKl"


@pytest.fixture(scope="module")
def split() -> Synthesized:
    return synthesize(databaseSecretArn=SECRET_ARN, migrationsSecretArn=MIGRATIONS_ARN)


def secret_resources_by_role(synth: Synthesized) -> dict[str, set]:
    """Each role's logical id -> the resources its secretsmanager statements name."""
    found: dict[str, set] = {}
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(str(a).startswith("secretsmanager:") for a in st["Action"]):
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                for role in policy["Properties"]["Roles"]:
                    found.setdefault(role["Ref"], set()).update(resources)
    return found


def test_with_a_migrations_secret_only_the_migrate_and_maintenance_functions_read_it(split):
    # Given databaseSecretArn (the job user) and migrationsSecretArn (the schema owner)
    by_role = secret_resources_by_role(split)
    migrate = split.stack.node.find_child("Migrations").function
    watchdog = split.stack.node.find_child("Watchdog").function
    maintenance = split.stack.jobs["database-maintenance"].function
    job_roles = {split.logical_id(s.function.role) for s in split.stack.jobs.values()}
    job_roles.add(split.logical_id(watchdog.role))
    migrate_role = split.logical_id(migrate.role)
    # Then the migrate function's policy names the owner's secret only
    assert by_role.pop(migrate_role) == {MIGRATIONS_ARN}
    # And database-maintenance's both: its VACUUM runs as the owner (Postgres 15/16 allow no
    # one else), its log pruning and run record as the job user
    assert by_role.pop(split.logical_id(maintenance.role)) == {SECRET_ARN, MIGRATIONS_ARN}
    # And every other job's and the watchdog's policy the job user's secret only; no other role reads one
    assert set(by_role) == job_roles - {split.logical_id(maintenance.role)} and len(job_roles) == len(JOBS) + 1
    assert all(resources == {SECRET_ARN} for resources in by_role.values())
    # And each function is told its own secret, database-maintenance also the owner's
    functions = python_functions(split)
    variables = {fid: fn["Environment"]["Variables"]["DATABASE_SECRET_ARN"] for fid, fn in functions.items()}
    assert variables.pop(split.logical_id(migrate)) == MIGRATIONS_ARN
    assert set(variables.values()) == {SECRET_ARN} and len(variables) == len(JOBS) + 1
    owner = {
        fid: fn["Environment"]["Variables"]["MAINTENANCE_DATABASE_SECRET_ARN"]
        for fid, fn in functions.items()
        if "MAINTENANCE_DATABASE_SECRET_ARN" in fn["Environment"]["Variables"]
    }
    assert owner == {split.logical_id(maintenance): MIGRATIONS_ARN}
    outputs = split.template.to_json()["Outputs"]
    assert outputs["MigrationsSecretArn"]["Value"] == MIGRATIONS_ARN
    assert outputs["DatabaseSecretArn"]["Value"] == SECRET_ARN


def test_zero_cdk_nag_findings_with_two_secrets(split):
    for pack in (AwsSolutionsChecks(split.app), ServerlessChecks(split.app)):
        assert [v.rule_name for v in pack.validate_scope(split.stack).violations] == []


def test_without_a_migrations_secret_every_function_reads_the_one_secret(synth):
    # (the VPC variant above passes databaseSecretArn alone)
    by_role = secret_resources_by_role(synth)
    assert len(by_role) == len(JOBS) + 2
    assert all(resources == {SECRET_ARN} for resources in by_role.values())
    # (the jobs' user is the owner then: database-maintenance vacuums with its own connection)
    assert not any(
        "MAINTENANCE_DATABASE_SECRET_ARN" in fn["Environment"]["Variables"] for fn in python_functions(synth).values()
    )
    assert "MigrationsSecretArn" not in synth.template.to_json()["Outputs"]


def test_pg_cron_cutover_option_adds_a_cutover_resource_created_after_every_rule(synth):
    # Given the default deploy: no cutover resource
    assert synth.of_type("Custom::PgCronCutover") == {}
    # When deployed with -c pgCronCutover=true
    cut = synthesize(pgCronCutover="true")
    ((_, resource),) = cut.of_type("Custom::PgCronCutover").items()
    ((_, migrations),) = cut.of_type("Custom::SchemaMigrations").items()
    # Then the migrate function runs it (same provider), marked as the cutover
    assert resource["Properties"]["ServiceToken"] == migrations["Properties"]["ServiceToken"]
    assert resource["Properties"]["Action"] == "pg-cron-cutover"
    # And it waits for every job's rule (which wait for the migrations), so EventBridge is
    # ready before pg_cron lets go
    rules = {cut.logical_id(s.rule) for s in cut.stack.jobs.values()}
    assert len(rules) == len(JOBS)
    assert rules <= set(resource["DependsOn"])


def test_cfn_lint_finds_nothing_of_ours_in_the_variants(synth, split):
    assert cfn_lint.findings(synth.template.to_json()) == []
    assert cfn_lint.findings(split.template.to_json()) == []
