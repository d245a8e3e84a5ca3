"""One ServiceConstruct per catalog service, built by concern: data (tables, key), functions (how
each kind is made and what it may do), consumers (MSK mappings, the outbox relay, schedules), the
API, and monitoring. Every concern adds its resources to the one construct, so logical ids are
the same whichever module makes them."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from shopstream import catalog, names
from stacks.config import EnvironmentConfig
from stacks.layers import deployed_layers
from stacks.messaging import bootstrap_servers_parameter_name
from stacks.network import NetworkStack
from stacks.platform import PlatformStack
from stacks.service.api import add_api
from stacks.service.consumers import ServiceConsumers
from stacks.service.data import ServiceData
from stacks.service.functions import ServiceFunctions
from stacks.service.monitoring import Monitoring

construct_name = names.construct


class ServiceConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, spec: catalog.ServiceSpec,
                 config: EnvironmentConfig, network: NetworkStack, platform: PlatformStack,
                 cluster_arn: str) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        removal = cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY
        # Values that change between deploys come from SSM, resolved by CloudFormation at deploy time.
        bootstrap_servers = ssm.StringParameter.value_for_string_parameter(
            self, bootstrap_servers_parameter_name(config))
        layers = deployed_layers(self, config.ssm_prefix)
        self.data = ServiceData(self, service=spec.name, removal=removal, billing=config.dynamodb)
        self.monitoring = Monitoring(self, service=spec.name, alarm_topic=platform.alarm_topic)
        if self.data.throughput is not None:
            self.monitoring.table_throttled(self.data.table, [index for index, _, _ in catalog.SERVICE_TABLE.indexes])
        self.functions = ServiceFunctions(self, spec=spec, config=config, network=network, platform=platform,
                                          data=self.data, monitoring=self.monitoring, layers=layers,
                                          bootstrap_servers=bootstrap_servers, removal=removal,
                                          cluster_arn=cluster_arn)
        consumers = ServiceConsumers(self, self.functions, cluster_arn=cluster_arn)
        for handler in spec.handlers:
            consumers.consumer(handler)
        if spec.publishes:  # a service that publishes nothing has no outbox to relay (audit)
            consumers.relay()
        if spec.routes:
            add_api(self, self.functions)
        for schedule in spec.schedules:
            consumers.schedule(schedule)
        self.monitoring.dashboard(config.prefix, self.functions.functions, spec.handlers)

    @property
    def table(self) -> Any:
        return self.data.table


class ServiceStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, spec: catalog.ServiceSpec, **props: Any) -> None:
        stack_props = {k: props.pop(k) for k in ("env", "description") if k in props}
        super().__init__(scope, construct_id, **stack_props)
        self.service = ServiceConstruct(self, "Service", spec=spec, **props)
        cdk.CfnOutput(self, names.TABLE_NAME_OUTPUT, value=self.service.table.table_name)  # found by local/ops.py
        if spec.routes:
            cdk.CfnOutput(self, "Routes", value=json.dumps([f"{r.method} {r.path}" for r in spec.routes]))
