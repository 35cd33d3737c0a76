"""Operating the deployed stack: invoke a function, pause/resume/reschedule a rule, status.

Names come from :mod:`shared.naming`, the same module the CDK app uses to create them.
Each function takes its boto3 client, so tests hand in moto's (or a Stubber'd) client.
Region and credentials come from the usual AWS environment (``AWS_PROFILE``,
``AWS_REGION``, ...); the stack's name prefix from ``--prefix`` / ``JOBCTL_PREFIX``.
"""

from __future__ import annotations

import json
from typing import Any

from shared import naming, registry
from shared.cron import to_eventbridge
from shared.errors import JobFailed, JobsError, redact


class AwsError(JobsError):
    """An AWS call failed (no credentials, no region, a rule or function not deployed, ...)."""


def client(service: str) -> Any:
    import boto3

    return boto3.client(service)


def describe_aws_error(exc: BaseException, *, what: str) -> AwsError:
    """One line for a botocore error, with a hint for the usual causes."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoRegionError):
        return AwsError(f"{what} failed: no AWS region; set AWS_REGION (or AWS_DEFAULT_REGION / a profile's region)")
    if isinstance(exc, NoCredentialsError):
        return AwsError(f"{what} failed: no AWS credentials; set AWS_PROFILE or run `aws sso login`")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            return AwsError(
                f"{what} failed: {message or 'not found'}; is the stack deployed in this account and "
                "region, and is --prefix / JOBCTL_PREFIX the deployment's name prefix?"
            )
        return AwsError(f"{what} failed: {code}: {message}")
    return AwsError(f"{what} failed: {type(exc).__name__}: {exc}")


def _aws_call(what: str, fn: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (BotoCoreError, ClientError) as exc:
        raise describe_aws_error(exc, what=what) from None


# --------------------------------------------------------------------------- Lambda


def invoke(lambda_client: Any, job_name: str, payload: dict[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """Invoke the job's deployed function synchronously and return its result.

    A function error (the handler raised: the run failed and was logged) becomes
    :class:`shared.errors.JobFailed` carrying Lambda's ``errorType: errorMessage``.
    """
    job = registry.get(job_name)
    name = naming.function_name(job.name, prefix)
    response = _aws_call(
        f"invoking {name}",
        lambda_client.invoke,
        FunctionName=name,
        InvocationType="RequestResponse",
        Payload=json.dumps(payload).encode(),
    )
    body = response["Payload"].read().decode("utf-8", errors="replace")
    try:
        result = json.loads(body) if body else {}
    except json.JSONDecodeError:
        result = {"response": body}
    if response.get("FunctionError"):
        if isinstance(result, dict):
            detail = f"{result.get('errorType', 'Error')}: {result.get('errorMessage', body)}"
        else:
            detail = body
        raise JobFailed(f"{name} failed: {redact(detail)} (see its CloudWatch logs and cron_job_logs)")
    if not isinstance(result, dict):
        result = {"response": result}
    return result


# --------------------------------------------------------------------------- EventBridge rules


def _describe_rule(events_client: Any, name: str) -> dict[str, Any]:
    return _aws_call(f"reading rule {name}", events_client.describe_rule, Name=name)  # type: ignore[no-any-return]


def pause(events_client: Any, job_name: str, *, prefix: str = "") -> dict[str, Any]:
    """Disable the job's rule (the guide's ``cron.unschedule``); returns the rule afterwards."""
    name = naming.rule_name(registry.get(job_name).name, prefix)
    _describe_rule(events_client, name)  # a clear "not deployed" before anything else
    _aws_call(f"disabling rule {name}", events_client.disable_rule, Name=name)
    return _describe_rule(events_client, name)


def resume(events_client: Any, job_name: str, *, prefix: str = "") -> dict[str, Any]:
    """Enable the job's rule again; returns the rule afterwards."""
    name = naming.rule_name(registry.get(job_name).name, prefix)
    _describe_rule(events_client, name)
    _aws_call(f"enabling rule {name}", events_client.enable_rule, Name=name)
    return _describe_rule(events_client, name)


_KEEP = ("Description", "State", "RoleArn", "EventBusName")


def reschedule(events_client: Any, job_name: str, cron: str, *, prefix: str = "") -> dict[str, Any]:
    """Give the job's rule a new schedule (5-field cron, validated like the registry's).

    Only the schedule changes: the rule keeps its state (a paused rule stays paused), its
    description and its targets. A deploy that updates the rule puts the registry's cron back.
    """
    job = registry.get(job_name)
    expression = to_eventbridge(cron)  # raises CronError before any AWS call
    name = naming.rule_name(job.name, prefix)
    rule = _describe_rule(events_client, name)
    if "ScheduleExpression" not in rule:
        raise AwsError(f"rule {name} is not a scheduled rule; refusing to give it a schedule")
    kwargs = {key: rule[key] for key in _KEEP if rule.get(key)}
    _aws_call(
        f"rescheduling rule {name}",
        events_client.put_rule,
        Name=name,
        ScheduleExpression=expression,
        **kwargs,
    )
    return _describe_rule(events_client, name)


def rule_summary(rule: dict[str, Any], job: registry.Job) -> dict[str, Any]:
    schedule = rule.get("ScheduleExpression")
    return {
        "job": job.name,
        "rule": rule.get("Name"),
        "state": rule.get("State"),
        "schedule": schedule,
        "registry_schedule": to_eventbridge(job.cron),
        "drift": schedule is not None and schedule != to_eventbridge(job.cron),
    }


def rules_status(events_client: Any, *, prefix: str = "") -> list[dict[str, Any]]:
    """Every registry job's deployed rule: state and schedule (``NOT DEPLOYED`` when missing)."""
    from botocore.exceptions import ClientError

    rows = []
    for job in registry.JOBS:
        name = naming.rule_name(job.name, prefix)
        try:
            rule = events_client.describe_rule(Name=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise describe_aws_error(exc, what=f"reading rule {name}") from None
            rule = {"Name": name, "State": "NOT DEPLOYED"}
        except Exception as exc:
            raise describe_aws_error(exc, what=f"reading rule {name}") from None
        rows.append(rule_summary(rule, job))
    return rows
