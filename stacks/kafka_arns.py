"""ARNs of MSK topics and consumer groups, derived from the cluster ARN (for IAM policies).

cluster: arn:<partition>:kafka:<region>:<account>:cluster/<name>/<uuid>
topic:   arn:<partition>:kafka:<region>:<account>:topic/<name>/<uuid>/<topic>
group:   arn:<partition>:kafka:<region>:<account>:group/<name>/<uuid>/<group>
"""

from __future__ import annotations

import aws_cdk as cdk


def _scoped(cluster_arn: str, kind: str, name: str) -> str:
    head = cdk.Fn.select(0, cdk.Fn.split("/", cluster_arn))  # arn:...:cluster
    cluster_name = cdk.Fn.select(1, cdk.Fn.split("/", cluster_arn))
    cluster_uuid = cdk.Fn.select(2, cdk.Fn.split("/", cluster_arn))
    prefix = cdk.Fn.select(0, cdk.Fn.split(":cluster", head))  # arn:...:kafka:region:account
    return cdk.Fn.join("", [prefix, f":{kind}/", cluster_name, "/", cluster_uuid, "/", name])


def topic_arn(cluster_arn: str, topic: str) -> str:
    return _scoped(cluster_arn, "topic", topic)


def group_arn(cluster_arn: str, group: str) -> str:
    return _scoped(cluster_arn, "group", group)
