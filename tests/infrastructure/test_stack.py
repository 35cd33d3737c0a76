"""The default deployment (stack-created secret, no VPC): every job's rule, function, retries,
dead-letter queue, IAM scope, alarms, dashboard and the migration custom resource."""

from __future__ import annotations

import copy
import json

import pytest
from aws_cdk import Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from cdk import cfn_lint
from cdk import migrations as cdk_migrations
from shared import naming
from shared.registry import JOBS, Job
from shared.watchdog import METRIC_HEARTBEAT
from tests.infrastructure.conftest import Synthesized, synthesize
from tests.unit.test_cron import EXPECTED_EVENTBRIDGE

# The exact EventBridge schedules, written out once (not recomputed) so a converter change shows.
SCHEDULES = EXPECTED_EVENTBRIDGE


@pytest.fixture(scope="module")
def synth() -> Synthesized:
    return synthesize()


def ids(synth: Synthesized, job: Job) -> dict[str, str]:
    scheduled = synth.stack.jobs[job.name]
    return {
        "function": synth.logical_id(scheduled.function),
        "rule": synth.logical_id(scheduled.rule),
        "log_group": synth.logical_id(scheduled.log_group),
        "role": synth.logical_id(scheduled.function.role),
    }


def only(resources: dict) -> tuple[str, dict]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.items()))


def dlq_id(synth: Synthesized) -> str:
    return only(synth.of_type("AWS::SQS::Queue"))[0]


def secret_id(synth: Synthesized) -> str:
    return only(synth.of_type("AWS::SecretsManager::Secret"))[0]


def test_every_registry_job_has_its_schedule_written_out():
    assert set(SCHEDULES) == {job.name for job in JOBS}


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_rule_fires_the_jobs_function_on_its_schedule_with_retries_and_dlq(synth, job):
    names = ids(synth, job)
    rule = synth.resources[names["rule"]]["Properties"]
    assert rule["Name"] == naming.rule_name(job.name)
    assert rule["ScheduleExpression"] == SCHEDULES[job.name]
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target == {
        "Id": "Target0",
        "Arn": {"Fn::GetAtt": [names["function"], "Arn"]},
        "RetryPolicy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600},
        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [dlq_id(synth), "Arn"]}},
    }  # and no Input/InputPath/InputTransformer: the default scheduled event carries as_of


def test_weekly_and_quarter_hourly_schedules_in_the_template(synth):
    synth.template.has_resource_properties(
        "AWS::Events::Rule", {"Name": "send-weekly-reports-schedule", "ScheduleExpression": "cron(0 0 ? * SUN *)"}
    )
    synth.template.has_resource_properties(
        "AWS::Events::Rule", {"Name": "cleanup-expired-sessions-schedule", "ScheduleExpression": "cron(0/15 * * * ? *)"}
    )


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_function_settings(synth, job):
    names = ids(synth, job)
    fn = synth.resources[names["function"]]["Properties"]
    assert fn["FunctionName"] == job.name
    assert fn["Handler"] == "functions.handler.handler"
    assert fn["Runtime"] == "python3.13"
    assert fn["Architectures"] == ["arm64"]
    assert fn["Timeout"] == job.lambda_timeout_s == job.timeout_s + 30
    assert fn["MemorySize"] == job.memory_mb
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["Environment"]["Variables"] == {
        "JOB_NAME": job.name,
        "DATABASE_SECRET_ARN": {"Ref": secret_id(synth)},
        "POWERTOOLS_SERVICE_NAME": naming.SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": naming.METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    assert fn["LoggingConfig"] == {"LogGroup": {"Ref": names["log_group"]}}
    assert synth.resources[names["log_group"]]["Properties"] == {"RetentionInDays": 90}
    assert "VpcConfig" not in fn


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_async_invoke_retries_twice_then_goes_to_the_dlq(synth, job):
    function_id = ids(synth, job)["function"]
    (config,) = [
        c["Properties"]
        for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert config == {
        "FunctionName": {"Ref": function_id},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 3600,
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq_id(synth), "Arn"]}}},
    }


def test_all_functions_share_one_code_asset(synth):
    keys = {
        json.dumps(f["Properties"]["Code"], sort_keys=True)
        for f in synth.of_type("AWS::Lambda::Function").values()
        if f["Properties"]["Runtime"].startswith("python")
    }
    assert len(keys) == 1


def statements_of_role(synth: Synthesized, role_id: str) -> list[dict]:
    found = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_each_function_reads_only_its_one_secret_and_nothing_broader(synth, job):
    names = ids(synth, job)
    statements = statements_of_role(synth, names["role"])
    by_action = {}
    for st in statements:
        assert st["Effect"] == "Allow"
        for action in as_list(st["Action"]):
            by_action.setdefault(action, []).extend(as_list(st["Resource"]))
    assert by_action == {
        "secretsmanager:GetSecretValue": [{"Ref": secret_id(synth)}],
        "secretsmanager:DescribeSecret": [{"Ref": secret_id(synth)}],
        "logs:CreateLogStream": [{"Fn::GetAtt": [names["log_group"], "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": [names["log_group"], "Arn"]}],
        "sqs:SendMessage": [{"Fn::GetAtt": [dlq_id(synth), "Arn"]}],
        "sqs:GetQueueAttributes": [{"Fn::GetAtt": [dlq_id(synth), "Arn"]}],
        "sqs:GetQueueUrl": [{"Fn::GetAtt": [dlq_id(synth), "Arn"]}],
        "xray:PutTraceSegments": ["*"],  # X-Ray takes no resource ARNs
        "xray:PutTelemetryRecords": ["*"],
    }
    # No managed policy (AWSLambdaBasicExecutionRole would allow every log group)
    assert "ManagedPolicyArns" not in synth.resources[names["role"]]["Properties"]


def test_no_policy_anywhere_grants_secretsmanager_on_a_wildcard(synth):
    grants = [
        st
        for policy in synth.of_type("AWS::IAM::Policy").values()
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(a).startswith("secretsmanager:") for a in as_list(st["Action"]))
    ]
    assert grants, "no policy reads the database secret: the functions could not connect"
    assert [st["Resource"] for st in grants] == [{"Ref": secret_id(synth)}] * len(grants)


def test_dead_letter_queue_is_encrypted_and_tls_only(synth):
    _, queue = only(synth.of_type("AWS::SQS::Queue"))
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    statements = [
        st
        for p in synth.of_type("AWS::SQS::QueuePolicy").values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert any(
        st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for st in statements
    )
    # EventBridge may send every rule's undeliverable events to it
    senders = [st for st in statements if st["Effect"] == "Allow"]
    assert {st["Principal"]["Service"] for st in senders} == {"events.amazonaws.com"}
    assert len(senders) == len(JOBS) + 1  # the jobs' rules and the watchdog's


def alarms_by_name(synth: Synthesized) -> dict[str, dict]:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()}


def topic_id(synth: Synthesized) -> str:
    return only(synth.of_type("AWS::SNS::Topic"))[0]


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_failure_and_missed_run_alarms_per_job(synth, job):
    alarms = alarms_by_name(synth)
    dims = [{"Name": "job", "Value": job.name}, {"Name": "service", "Value": naming.SERVICE}]
    for name, metric, statistic, period in (
        (f"{job.name}-failed", naming.METRIC_FAILED, "Sum", 300),
        (f"{job.name}-missed-run", naming.METRIC_MISSED, "Maximum", 900),
        (f"{job.name}-auto-paused", naming.METRIC_AUTO_PAUSED, "Sum", 300),
    ):
        alarm = alarms[name]
        assert alarm["Namespace"] == naming.METRICS_NAMESPACE
        assert alarm["MetricName"] == metric
        assert sorted(alarm["Dimensions"], key=lambda d: d["Name"]) == dims
        assert (alarm["Statistic"], alarm["Period"]) == (statistic, period)
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [{"Ref": topic_id(synth)}]


def test_dead_letter_queue_alarm(synth):
    alarm = alarms_by_name(synth)["scheduled-jobs-dead-letter-queue"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id(synth), "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["AlarmActions"] == [{"Ref": topic_id(synth)}]


def test_silent_watchdog_alarms_with_missing_data_as_breaching(synth):
    alarm = alarms_by_name(synth)["scheduled-jobs-watchdog-silent"]
    assert alarm["MetricName"] == METRIC_HEARTBEAT
    assert alarm["Dimensions"] == [{"Name": "service", "Value": naming.SERVICE}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (900, 2, 2)
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["AlarmActions"] == [{"Ref": topic_id(synth)}]


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_a_lambda_errors_alarm_per_job_function_as_a_backstop(synth, job):
    alarm = alarms_by_name(synth)[f"{job.name}-errors"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": ids(synth, job)["function"]}}]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 300, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic_id(synth)}]


def test_exactly_the_alarms_expected(synth):
    assert len(alarms_by_name(synth)) == 4 * len(JOBS) + 2


def test_cloudwatch_may_publish_to_the_topic_for_this_stacks_alarms_only(synth):
    statements = [
        st
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    (allow,) = [st for st in statements if st["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish" and allow["Resource"] == {"Ref": topic_id(synth)}
    alarm_arns = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(a["Fn::GetAtt"][0] for a in alarm_arns) == sorted(synth.of_type("AWS::CloudWatch::Alarm"))
    assert all(a["Fn::GetAtt"][1] == "Arn" for a in alarm_arns)


def test_what_outlives_the_stack(synth):
    # Kept: the operator's secret, undelivered events, the run history's log lines
    assert synth.resources[secret_id(synth)]["DeletionPolicy"] == "Retain"
    assert synth.resources[dlq_id(synth)]["DeletionPolicy"] == "Retain"
    provider_logs = synth.logical_id(synth.stack.migrations.node.find_child("ProviderLogs"))
    for log_id, group in synth.of_type("AWS::Logs::LogGroup").items():
        assert group["DeletionPolicy"] == ("Delete" if log_id == provider_logs else "Retain"), log_id
    # Deleted (after a 7-day wait): the key of the alarm topic, which holds nothing at rest
    key = only(synth.of_type("AWS::KMS::Key"))[1]
    assert key["DeletionPolicy"] == "Delete" and key["Properties"]["PendingWindowInDays"] == 7


def test_the_stack_created_secret_holds_the_exact_placeholder_the_migrate_function_knows(synth):
    secret = synth.resources[secret_id(synth)]["Properties"]
    assert secret["SecretString"] == naming.SECRET_PLACEHOLDER
    assert "GenerateSecretString" not in secret


def test_alarm_topic_is_kms_encrypted_tls_only_without_subscription_by_default(synth):
    topic = synth.resources[topic_id(synth)]["Properties"]
    assert "Fn::GetAtt" in topic["KmsMasterKeyId"]
    statements = [
        st
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert any(
        st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for st in statements
    )
    assert synth.of_type("AWS::SNS::Subscription") == {}
    key = only(synth.of_type("AWS::KMS::Key"))[1]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(st.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for st in key["KeyPolicy"]["Statement"])


def dashboard(synth: Synthesized) -> dict:
    """The dashboard body as JSON; a reference inside it (a log group name) reads ``REF:<logical id>``."""
    resource = only(synth.of_type("AWS::CloudWatch::Dashboard"))[1]["Properties"]
    # Dashboard names are account-wide: the region is part of it
    assert resource["DashboardName"] == {"Fn::Join": ["", ["scheduled-jobs-", {"Ref": "AWS::Region"}]]}
    parts = resource["DashboardBody"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else reference(p) for p in parts))


def reference(token: dict) -> str:
    if "Ref" in token:
        return f"REF:{token['Ref']}"
    return "GETATT:" + ".".join(token["Fn::GetAtt"])


def graph_metrics(body: dict, title: str) -> list[tuple[str, str, dict[str, str], dict]]:
    """(namespace, name, dimensions, options) of each metric in the graph called ``title``."""
    (widget,) = [w for w in body["widgets"] if w["properties"].get("title") == title]
    found = []
    for entry in widget["properties"]["metrics"]:
        *fields, options = entry
        namespace, name, *dims = fields
        found.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True)), options))
    return found


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
def test_dashboard_has_the_jobs_runs_duration_and_summary_widgets(synth, job):
    body = dashboard(synth)
    ns, dims = naming.METRICS_NAMESPACE, {"service": naming.SERVICE, "job": job.name}
    function = {"FunctionName": f"REF:{ids(synth, job)['function']}"}
    assert graph_metrics(body, f"{job.name}: runs") == [
        (ns, naming.METRIC_SUCCEEDED, dims, {"label": "succeeded", "period": 3600, "stat": "Sum"}),
        (ns, naming.METRIC_FAILED, dims, {"label": "failed", "period": 3600, "stat": "Sum"}),
        (ns, naming.METRIC_SKIPPED, dims, {"label": "skipped", "period": 3600, "stat": "Sum"}),
        (
            "AWS/Lambda",
            "Errors",
            function,
            {"label": "function errors", "period": 3600, "stat": "Sum", "yAxis": "right"},
        ),
    ]
    assert graph_metrics(body, f"{job.name}: duration (ms)") == [
        (ns, naming.METRIC_DURATION, dims, {"label": "p50", "period": 3600, "stat": "p50"}),
        (ns, naming.METRIC_DURATION, dims, {"label": "p99", "period": 3600, "stat": "p99"}),
    ]
    assert graph_metrics(body, f"{job.name}: summary counts") == [
        (ns, key, dims, {"label": key, "period": 3600, "stat": "Sum"}) for key in job.summary_keys
    ]
    missed = graph_metrics(body, "Missed runs (watchdog)")
    assert (ns, naming.METRIC_MISSED, dims, {"label": job.name, "period": 900, "stat": "Maximum"}) in missed


def test_dashboard_logs_insights_widget_covers_every_job_log_group(synth):
    (widget,) = [w for w in dashboard(synth)["widgets"] if w["type"] == "log"]
    query = widget["properties"]["query"]
    assert 'filter level = "ERROR" and (message = "run failed" or message = "run missed")' in query
    for job in JOBS:
        assert f"SOURCE 'REF:{ids(synth, job)['log_group']}'" in query, job.name


def test_migrations_custom_resource_runs_the_migrate_function_with_the_sql_hash(synth):
    ((resource_id, resource),) = synth.of_type("Custom::SchemaMigrations").items()
    assert resource["Properties"]["SqlHash"] == synth.sql_hash
    migrate_id = synth.logical_id(synth.stack.node.find_child("Migrations").node.find_child("Function"))
    migrate = synth.resources[migrate_id]["Properties"]
    assert migrate["Handler"] == "functions.migrate.handler"
    assert migrate["FunctionName"] == "scheduled-jobs-migrate"
    assert migrate["Environment"]["Variables"]["DATABASE_SECRET_CREATED_BY_STACK"] == "true"
    assert migrate["Environment"]["Variables"]["DATABASE_SECRET_ARN"] == {"Ref": secret_id(synth)}
    # Every job's function and rule wait for the migration
    for job in JOBS:
        names = ids(synth, job)
        assert resource_id in synth.resources[names["function"]]["DependsOn"]
        assert resource_id in synth.resources[names["rule"]]["DependsOn"]


def test_sql_hash_changes_when_any_migration_or_function_file_changes(tmp_path, monkeypatch):
    (tmp_path / "migrations").mkdir()
    (tmp_path / "functions").mkdir()
    (tmp_path / "migrations" / "V001__a.sql").write_text("CREATE TABLE a ();")
    (tmp_path / "functions" / "f.sql").write_text("SELECT 1;")
    monkeypatch.setattr(cdk_migrations.migrations, "MIGRATIONS_DIR", tmp_path / "migrations")
    monkeypatch.setattr(cdk_migrations.migrations, "FUNCTIONS_DIR", tmp_path / "functions")
    before = cdk_migrations.sql_hash()
    (tmp_path / "functions" / "f.sql").write_text("SELECT 2;")
    after_function = cdk_migrations.sql_hash()
    (tmp_path / "migrations" / "V002__b.sql").write_text("CREATE TABLE b ();")
    after_migration = cdk_migrations.sql_hash()
    lockdown = tmp_path / "lockdown.sql"
    lockdown.write_text("SELECT 'x' AS statement WHERE false")
    monkeypatch.setattr(cdk_migrations.exposure, "LOCKDOWN_SQL", lockdown)
    after_lockdown = cdk_migrations.sql_hash()
    assert len({before, after_function, after_migration, after_lockdown}) == 4


def test_watchdog_runs_every_15_minutes_with_the_same_secret(synth):
    watchdog = synth.stack.node.find_child("Watchdog")
    fn = synth.resources[synth.logical_id(watchdog.function)]["Properties"]
    assert fn["Handler"] == "functions.watchdog.handler"
    assert fn["FunctionName"] == "scheduled-jobs-watchdog"
    # it runs catch-ups in-process: the longest job (database-maintenance, 630 s) fits, with the largest memory
    assert (fn["Timeout"], fn["MemorySize"]) == (900, 512)
    assert fn["Environment"]["Variables"]["DATABASE_SECRET_ARN"] == {"Ref": secret_id(synth)}
    rule = synth.resources[synth.logical_id(watchdog.rule)]["Properties"]
    assert rule["ScheduleExpression"] == "rate(15 minutes)"


def test_stack_created_secret_and_its_output(synth):
    secret = synth.resources[secret_id(synth)]
    assert "Fill in" in secret["Properties"]["Description"]
    outputs = synth.template.to_json()["Outputs"]
    assert outputs["DatabaseSecretArn"]["Value"] == {"Ref": secret_id(synth)}


def test_zero_cdk_nag_findings(synth):
    # cdk-nag 3 is a policy-validation plugin: synth (in the fixture) already raised on a finding.
    for pack in (AwsSolutionsChecks(synth.app), ServerlessChecks(synth.app)):
        report = pack.validate_scope(synth.stack)
        assert [v.rule_name for v in report.violations] == []
        assert report.success
    errors = Annotations.from_stack(synth.stack).find_error(
        "*", Match.string_like_regexp("(AwsSolutions|Serverless)-.*")
    )
    assert errors == []


def test_the_nag_check_is_live(synth):
    # Given an unacknowledged finding (a bare queue) in a throwaway stack of the same app version
    stack = Stack(synth.app, "NagProbe")
    sqs.Queue(stack, "Bare")
    # Then the same checks report it: the zero above is not an empty pack
    report = AwsSolutionsChecks(synth.app).validate_scope(stack)
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= {v.rule_name for v in report.violations}
    report = ServerlessChecks(synth.app).validate_scope(stack)
    assert "Serverless-SQSRedrivePolicy" in {v.rule_name for v in report.violations}


def test_cfn_lint_finds_nothing_of_ours(synth):
    assert cfn_lint.findings(synth.template.to_json()) == []


def test_cfn_lint_would_report_a_redundant_depends_on_of_ours(synth):
    # Given the DependsOn this stack used to add: a function on the log group its LoggingConfig names
    template = copy.deepcopy(synth.template.to_json())
    names = ids(synth, JOBS[0])
    template["Resources"][names["function"]]["DependsOn"].append(names["log_group"])
    # Then cfn-lint reports it (only aws-cdk-lib's DependsOn on the function's own role is set aside)
    assert [f.split(" ")[0] for f in cfn_lint.findings(template)] == ["W3005"]
