"""Build every stack of one environment from the catalog."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from shopstream import catalog, names
from stacks import recovery
from stacks.config import EnvironmentConfig
from stacks.messaging import MessagingStack
from stacks.network import NetworkStack
from stacks.platform import PlatformStack
from stacks.service import ServiceStack


def environment(app: cdk.App, config: EnvironmentConfig) -> cdk.Environment:
    """The region (and account, when configured) every stack of the environment deploys to.

    With a concrete account CDK would look the region's AZs up with AWS credentials; the
    configured zones are recorded as that lookup's answer, so synthesis needs no credentials
    and the VPC is built from exactly the zones the configuration names.
    """
    if config.account:
        app.node.set_context(f"availability-zones:account={config.account}:region={config.region}",
                             list(config.availability_zones))
    return cdk.Environment(account=config.account, region=config.region)


def build(app: cdk.App, config: EnvironmentConfig) -> dict[str, cdk.Stack]:
    prefix = config.prefix
    common = {"env": environment(app, config)}
    # The replication target's stacks (another region) name the source cluster and its subnets: CDK's cross-region
    # references, which the producing stacks enable too (stacks/recovery.py).
    producing = {**common, "cross_region_references": True} if config.replication else common
    network = NetworkStack(app, names.service_stack(prefix, "network"), config=config,
                           description="shopstream network: VPC, endpoints, security groups", **producing)
    messaging = MessagingStack(app, names.service_stack(prefix, "messaging"), config=config, network=network,
                               description="shopstream event backbone: MSK, topics, schema registry", **producing)
    platform = PlatformStack(app, names.service_stack(prefix, "platform"), config=config,
                             description="shopstream shared: layers, API, users, alarms, audit archive", **producing)
    stacks: dict[str, cdk.Stack] = {"network": network, "messaging": messaging, "platform": platform}
    for spec in catalog.SERVICES:
        stacks[spec.name] = ServiceStack(
            app, names.service_stack(prefix, spec.name), spec=spec, config=config, network=network, platform=platform,
            cluster_arn=messaging.cluster_arn,
            description=f"shopstream {spec.name} service: {spec.description}", **common)
        # Read at deploy time from SSM (layer versions, bootstrap brokers): deploy after their writers.
        stacks[spec.name].add_stack_dependency(messaging)
        stacks[spec.name].add_stack_dependency(platform)
    if config.replication:
        stacks.update(recovery.build(app, config, environment=environment(app, config.replica()), source=messaging,
                                     platform=platform))
    for stack in stacks.values():
        cdk.Tags.of(stack).add("project", "shopstream")
        cdk.Tags.of(stack).add("environment", config.name)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks
