"""VPC with private subnets only (no NAT): the MSK brokers, the outbox relays that produce to them,
and the network interfaces of the MSK event source mappings' pollers.

Nothing else runs in the VPC (docs/decisions.md, 2026-11-29): consumers, API and schedule functions
reach AWS APIs over their public endpoints. The only AWS APIs called from inside are the pollers' on-failure
destinations: S3 (a given-up batch) and SQS, X-Ray's OTLP endpoint (the relays' spans), where the mappings'
pollers run on demand, Lambda and STS (docs/decisions.md, 2026-12-05). Where direct publish is on (cdk.json
``directPublish``), the critical path's committers also run here, producing to the brokers
themselves: they reach DynamoDB, SQS (their dead letters) and KMS (personal data, request fingerprints) through
endpoints, and so do the relays' read-backs (docs/decisions.md, 2026-12-05).
tests/infra/test_readiness.py derives what each function calls from its code and checks it can be reached
from where it runs.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import EnvironmentConfig

MSK_IAM_TLS_PORT = 9098  # MSK brokers with IAM authentication listen here


class NetworkStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            # Exactly the configured zones: one MSK client subnet per AZ (brokerCount is a multiple of them).
            availability_zones=list(config.availability_zones),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22)
            ],
        )
        flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))

        self.functions_sg = ec2.SecurityGroup(
            self, "FunctionsSg", vpc=self.vpc, description="shopstream outbox relays (produce to MSK)",
            allow_all_outbound=True)
        self.cluster_sg = ec2.SecurityGroup(
            self, "ClusterSg", vpc=self.vpc, description="shopstream MSK brokers", allow_all_outbound=True)
        self.cluster_sg.add_ingress_rule(
            self.functions_sg, ec2.Port.tcp(MSK_IAM_TLS_PORT), "relays produce with IAM auth")
        # Lambda's MSK pollers run with the cluster's security group: it must admit itself.
        self.cluster_sg.add_ingress_rule(
            self.cluster_sg, ec2.Port.tcp(MSK_IAM_TLS_PORT), "event source mapping pollers")

        # The pollers send failed batches to the on-failure destination from inside the VPC:
        # "You must deploy a VPC endpoint for your on-failure destination service inside your Kafka
        # cluster VPC" (https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html). The destination
        # is S3 (the records themselves, shopstream/failed_batches.py): a gateway endpoint, free, on the
        # subnets' route tables; the cluster's security group lets all traffic out. In provisioned mode the
        # pollers need no Lambda or STS endpoint to invoke the function
        # (https://docs.aws.amazon.com/lambda/latest/dg/with-msk-cluster-network.html).
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)

        # The relays send their spans to X-Ray's OTLP endpoint (shopstream.tracing; docs/decisions.md,
        # 2026-12-04): from subnets without NAT, through an interface endpoint whose private DNS answers for
        # xray.<region>.amazonaws.com, admitting the relays on 443.
        self.endpoints_sg = ec2.SecurityGroup(
            self, "EndpointsSg", vpc=self.vpc, description="shopstream interface endpoints (X-Ray OTLP)",
            allow_all_outbound=False)
        self.endpoints_sg.add_ingress_rule(self.functions_sg, ec2.Port.tcp(443), "relays send spans to X-Ray")
        self.vpc.add_interface_endpoint(
            "XRay", service=ec2.InterfaceVpcEndpointAwsService.XRAY, private_dns_enabled=True,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.endpoints_sg], open=False)

        # On-demand pollers invoke the function and take its role from inside the cluster's subnets, with the
        # cluster's security group: "AWS PrivateLink VPC endpoints are required for functions with event source
        # mappings that use the default (on-demand) mode for event pollers" (Lambda and STS; Secrets Manager only
        # for SASL/SCRAM, not the IAM authentication used here). Provisioned pollers need none
        # (https://docs.aws.amazon.com/lambda/latest/dg/with-msk-cluster-network.html,
        # https://docs.aws.amazon.com/lambda/latest/dg/kafka-scaling-modes.html).
        if config.on_demand_pollers:
            self.poller_endpoints_sg = ec2.SecurityGroup(
                self, "PollerEndpointsSg", vpc=self.vpc, allow_all_outbound=False,
                description="shopstream interface endpoints of the on-demand MSK pollers (Lambda, STS)")
            self.poller_endpoints_sg.add_ingress_rule(self.cluster_sg, ec2.Port.tcp(443),
                                                      "MSK pollers invoke functions and assume their roles")
            self._interface_endpoints((("Lambda", ec2.InterfaceVpcEndpointAwsService.LAMBDA_),
                                       ("Sts", ec2.InterfaceVpcEndpointAwsService.STS)), self.poller_endpoints_sg)
        if config.direct_publish:
            # DynamoDB: a gateway endpoint (free) on the subnets' route tables. SQS and KMS: interface endpoints,
            # billed per AZ and hour (tools/capacity.py), admitting the functions' security group on 443.
            self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
            self._interface_endpoints((("Sqs", ec2.InterfaceVpcEndpointAwsService.SQS),
                                       ("Kms", ec2.InterfaceVpcEndpointAwsService.KMS)), self.endpoints_sg)

    def _interface_endpoints(self, services: tuple[tuple[str, ec2.InterfaceVpcEndpointAwsService], ...],
                             security_group: ec2.ISecurityGroup) -> None:
        """Interface endpoints in the isolated subnets, admitting only ``security_group``'s rules."""
        for name, service in services:
            self.vpc.add_interface_endpoint(
                name, service=service, private_dns_enabled=True,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
                security_groups=[security_group], open=False)
