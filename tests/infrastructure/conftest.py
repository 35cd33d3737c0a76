"""Synthesize the app once per module (jsii makes each synth take seconds), as ``cdk synth`` would.

The context is cdk.json's (the same feature flags as a real deploy) plus ``skipBundling``:
the asset holds the sources only, no pip run; ``make synth`` exercises the real bundling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from cdk.app import build
from cdk.migrations import sql_hash
from cdk.stack import ScheduledJobsStack

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Synthesized:
    app: App
    stack: ScheduledJobsStack
    template: Template
    resources: dict[str, dict[str, Any]]
    sql_hash: str
    """The SQL digest when the app was built (other work may edit the SQL while tests run)."""

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def logical_id(self, construct: Any) -> str:
        return self.stack.resolve(self.stack.get_logical_id(construct.node.default_child))


def synthesize(**context: str) -> Synthesized:
    base = json.loads((ROOT / "cdk.json").read_text())["context"]
    digest = sql_hash()
    app, stack = build({**base, "skipBundling": "true", **context})
    app.synth()  # runs the cdk-nag validation plugin, as `cdk synth` does: raises on any finding
    template = Template.from_stack(stack)
    return Synthesized(app, stack, template, template.to_json()["Resources"], digest)
