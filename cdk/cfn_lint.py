"""cfn-lint on the synthesized template (``make lint``): no error, and no warning from our code.

``python -m cdk.cfn_lint [key=value ...]`` synthesizes offline (cdk.json's context, sources
only) and lints the stack's template. One finding is aws-cdk-lib's, not ours, and is left
aside: a Lambda function's ``DependsOn`` on its own role (W3005), which CDK always adds
(to order the role's policy before the function) although ``Role`` already references it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint

from cdk.app import build

ROOT = Path(__file__).resolve().parent.parent


def _cdks_own(match: Any, template: dict[str, Any]) -> bool:
    """aws-cdk-lib's DependsOn from a function to the role its ``Role`` property already names."""
    if match.rule.id != "W3005" or len(match.path) < 3 or match.path[2] != "DependsOn":
        return False
    resource = template["Resources"][match.path[1]]
    dependency = resource["DependsOn"][match.path[3]]
    return resource["Type"] == "AWS::Lambda::Function" and resource["Properties"].get("Role") == {
        "Fn::GetAtt": [dependency, "Arn"]
    }


def findings(template: dict[str, Any]) -> list[str]:
    """cfn-lint's errors and warnings (informational ones aside), without aws-cdk-lib's own."""
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return [
        f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}"
        for m in matches
        if not m.rule.id.startswith("I") and not _cdks_own(m, template)
    ]


def synthesize(context: dict[str, str]) -> dict[str, Any]:
    """The stack's template, synthesized as ``cdk synth`` would (sources only, no pip run)."""
    base = json.loads((ROOT / "cdk.json").read_text())["context"]
    app, stack = build({**base, "skipBundling": "true", **context})
    assembly = app.synth()
    template: dict[str, Any] = assembly.get_stack_artifact(stack.artifact_id).template
    return template


def main(argv: list[str]) -> int:
    context = dict(arg.split("=", 1) for arg in argv)
    found = findings(synthesize(context))
    for line in found:
        print(line)
    print(f"cfn-lint: {len(found)} finding(s) in the synthesized template")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
