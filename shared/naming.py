"""Names shared by the CDK app (which creates them) and jobctl (which finds them).

An operator finds ``reset-daily-challenges`` in the Lambda console: a function is named
exactly after its job, behind an optional prefix (CDK context ``namePrefix``, jobctl
``--prefix`` / ``JOBCTL_PREFIX``) for a second deployment in the same account.
"""

from __future__ import annotations

#: CloudWatch metrics namespace and the Powertools service name.
METRICS_NAMESPACE = "LangexScheduledJobs"
SERVICE = "scheduled-jobs"
#: The metric dimension that names the job (beside Powertools' own ``service``).
JOB_DIMENSION = "job"

#: Run-outcome metrics (Count) and the duration (Milliseconds), one set per job.
METRIC_SUCCEEDED = "RunsSucceeded"
METRIC_FAILED = "RunsFailed"
METRIC_SKIPPED = "RunsSkipped"
METRIC_DURATION = "DurationMs"
#: Emitted by the watchdog: how many occurrences fell outside the catch-up window unrun.
METRIC_MISSED = "MissedRuns"
#: Emitted once (value 1) by the runner when a job pauses itself after repeated failures.
METRIC_AUTO_PAUSED = "JobAutoPaused"

#: What the secret the stack creates holds until the operator stores the connection URL in it.
#: The migrate function treats exactly this value as "not filled in yet" (see functions/migrate.py).
SECRET_PLACEHOLDER = "not filled in yet: store postgresql://USER:PASSWORD@HOST:5432/DBNAME?sslmode=require here"  # noqa: S105

#: The EventBridge ``source`` of events fired by jobctl's local scheduler.
LOCAL_SCHEDULER_SOURCE = "jobctl.scheduler"


def function_name(job_name: str, prefix: str = "") -> str:
    return f"{prefix}{job_name}"


def rule_name(job_name: str, prefix: str = "") -> str:
    return f"{prefix}{job_name}-schedule"
