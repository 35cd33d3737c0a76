"""cdk-nag 3.x acknowledgements: CDK's native ``Validations.of(...).acknowledge``.

A finding is acknowledged on the construct that causes it, next to its cause, with its
exact rule id (for IAM5 the finding, e.g. ``AwsSolutions-IAM5[Resource::*]``) and a reason
specific to this stack.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))
