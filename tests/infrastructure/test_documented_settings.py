"""Every `make synth` line in docs/deploy.md synthesizes: cdk-nag (both packs) and cfn-lint clean."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cdk import cfn_lint
from cdk.config import StackConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def documented() -> list[dict[str, str]]:
    """The context of each ``make synth [CDK_ARGS="-c k=v ..."]`` line of the page."""
    found = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("make synth"):
            continue
        match = re.search(r'CDK_ARGS="([^"]*)"', line)
        words = shlex.split(match.group(1)) if match else []
        assert all(w == "-c" for w in words[::2]), line
        found.append(dict(w.split("=", 1) for w in words[1::2]))
    return found


SETTINGS = documented()


def test_the_lines_cover_the_settings_and_name_only_real_ones():
    keys = {key for context in SETTINGS for key in context}
    assert keys <= {field.alias for field in StackConfig.model_fields.values()}
    assert {
        "databaseSecretArn",
        "migrationsSecretArn",
        "databaseSecretKmsKeyArn",
        "vpcId",
        "subnetIds",
        "securityGroupId",
        "namePrefix",
        "alarmEmail",
        "logRetentionDays",
        "architecture",
    } <= keys


@pytest.mark.parametrize("context", SETTINGS, ids=lambda c: ",".join(c) or "defaults")
def test_each_documented_setting_synthesizes_clean(context):
    template = cfn_lint.synthesize(context)  # raises on any cdk-nag finding, as `cdk synth` does
    assert cfn_lint.findings(template) == []
