"""cdk-nag acknowledgements in one place: each carries its reason and is recorded for review."""

from __future__ import annotations

import json
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

    def render(part: object) -> str:
        if isinstance(part, str):
            return part
        if isinstance(part, dict) and set(part) == {"Ref"}:
            return f"<{part['Ref']}>"
        if isinstance(part, dict) and set(part) == {"Fn::GetAtt"}:
            return f"<{part['Fn::GetAtt'][0]}.{part['Fn::GetAtt'][1]}>"
        if isinstance(part, dict) and "Fn::Join" in part and part["Fn::Join"][0] == "":
            return "".join(render(p) for p in part["Fn::Join"][1])
        return json.dumps(part, separators=(",", ":"))

    return render(stack.resolve(value))


def acknowledge_wildcard_resources(construct: IConstruct, resources: list[str], reason: str) -> None:
    """Accept the IAM5 finding of each wildcard resource ARN granted to ``construct``."""
    stack = cdk.Stack.of(construct)
    for resource in resources:
        acknowledge(construct, f"AwsSolutions-IAM5[Resource::{_finding_text(stack, resource)}]", reason)
