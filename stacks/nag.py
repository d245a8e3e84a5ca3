"""cdk-nag acknowledgements in one place: each carries its reason and is recorded for review."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct


@dataclass(frozen=True)
class Acknowledged:
    path: str
    rule: str
    reason: str


ACKNOWLEDGED: list[Acknowledged] = []


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept one cdk-nag finding on ``construct`` (and its children), for a stated reason."""
    if len(reason) < 20:
        raise ValueError(f"acknowledging {rule} needs a real reason, got {reason!r}")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
    ACKNOWLEDGED.append(Acknowledged(construct.node.path, rule, reason))


def _finding_text(stack: cdk.Stack, value: str) -> str:
    """How cdk-nag names a resource in a finding id: Fn::Join parts concatenated, intrinsics as compact JSON."""
    import json

    resolved = stack.resolve(value)
    if isinstance(resolved, str):
        return resolved
    if isinstance(resolved, dict) and "Fn::Join" in resolved and resolved["Fn::Join"][0] == "":
        return "".join(p if isinstance(p, str) else json.dumps(p, separators=(",", ":"))
                       for p in resolved["Fn::Join"][1])
    return json.dumps(resolved, separators=(",", ":"))


def acknowledge_wildcard_resources(construct: IConstruct, resources: list[str], reason: str) -> None:
    """Accept the IAM5 finding of each wildcard resource ARN granted to ``construct``."""
    stack = cdk.Stack.of(construct)
    for resource in resources:
        acknowledge(construct, f"AwsSolutions-IAM5[Resource::{_finding_text(stack, resource)}]", reason)
