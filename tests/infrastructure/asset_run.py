"""Run inside the built asset the way Lambda does (started by test_asset.py with CPython 3.13, -I -S).

argv: the asset directory, the boto3-only directory, and a JSON plan ``{"jobs": [[name, as_of], ...]}``.
Prints one ``RESULT {...}`` line: where every module came from, the migrate result and each run's result.
"""

import json
import os
import sys

asset, boto3_dir, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [asset, boto3_dir]


class Context:
    memory_limit_in_mb = 256

    def __init__(self, name):
        self.function_name = name
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
        self.aws_request_id = f"asset-test-{name}"

    def get_remaining_time_in_millis(self):
        return 300_000


from functions import handler, migrate  # noqa: E402

out = {"path": sys.path, "migrate": migrate.handler({"RequestType": "Create"}, Context("scheduled-jobs-migrate"))}
out["runs"] = {}
for name, as_of in plan["jobs"]:
    os.environ["JOB_NAME"] = name
    out["runs"][name] = handler.handler({"as_of": as_of}, Context(name))
out["modules"] = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
print("RESULT " + json.dumps(out))
