"""The replication target region (cdk.json ``replication``): what a failover there needs of the event backbone.

AWS creates an MSK Replicator in its *target* cluster's region, so the target side is its own stacks in that region,
built from the environment's settings (``EnvironmentConfig.replica``): the same network and the same brokers, and the
Replicator reading the source cluster across regions (stacks/messaging.py). docs/decisions.md (2026-12-04,
cross-region replication) says what else the second region holds and why; docs/runbooks/failover.md how it is used.

Cross-region values (the source cluster's ARN and client subnets, the customer-data key's ARN) travel through CDK's
cross-region references: an SSM parameter the producing stack writes into the target region, read there at deploy
time; synthesis needs no AWS credentials.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from shopstream import names
from stacks.config import EnvironmentConfig
from stacks.messaging import MessagingStack
from stacks.network import NetworkStack
from stacks.platform import KEY_DELETION_WINDOW_DAYS, PlatformStack, break_glass_statements


class CustomerDataKeyReplicaStack(cdk.Stack):
    """The customer-data key's replica under the same alias, so that what is sealed in the replicated events opens
    in this region with the wrapped keys of the key store's replica (stacks/platform.py): "the same key ID, key
    material, and other metadata" (https://docs.aws.amazon.com/kms/latest/developerguide/mrk-how-it-works.html).
    A replica has a key policy of its own (not shared with the primary): the primary's, break-glass denies included.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, primary: kms.IKey,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        policy = iam.PolicyDocument(statements=[
            # What CDK gives the primary: the account's IAM policies may allow any KMS action on the key.
            iam.PolicyStatement(principals=[iam.AccountRootPrincipal()], actions=["kms:*"], resources=["*"]),
            *break_glass_statements(self, config),
        ])
        replica = kms.CfnReplicaKey(
            self, "CustomerDataKey", primary_key_arn=primary.key_arn, key_policy=policy,
            pending_window_in_days=KEY_DELETION_WINDOW_DAYS,
            description=f"shopstream: replica of the customer-data key of {config.name} in its replication target")
        replica.apply_removal_policy(cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY)
        kms.CfnAlias(self, "CustomerDataKeyAlias", alias_name=names.customer_data_key_alias(config.prefix),
                     target_key_id=replica.ref)


def build(app: cdk.App, config: EnvironmentConfig, *, environment: cdk.Environment, source: MessagingStack,
          platform: PlatformStack) -> dict[str, cdk.Stack]:
    """The target region's stacks, by part name (``dr-network``, ``dr-messaging``, ``dr-keys``)."""
    replica = config.replica()
    common = {"env": environment, "cross_region_references": True}
    network = NetworkStack(
        app, f"{config.prefix}-dr-network", config=replica, **common,
        description=f"shopstream replication target in {replica.region}: VPC, security groups")
    messaging = MessagingStack(
        app, f"{config.prefix}-dr-messaging", config=replica, network=network, replicates_from=source, **common,
        description=f"shopstream replication target in {replica.region}: MSK cluster, schema registry, the "
                    f"Replicator from {config.region}")
    # The Replicator needs the source's multi-VPC connectivity and cluster policy in place (the source's update).
    messaging.add_stack_dependency(source)
    keys = CustomerDataKeyReplicaStack(
        app, f"{config.prefix}-dr-keys", config=replica, primary=platform.customer_data_key, **common,
        description=f"shopstream replication target in {replica.region}: the customer-data key's replica")
    return {"dr-network": network, "dr-messaging": messaging, "dr-keys": keys}
