"""VPC with private subnets only (no NAT): AWS APIs are reached through VPC endpoints."""

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
            self, "FunctionsSg", vpc=self.vpc, description="shopstream Lambda functions", allow_all_outbound=True)
        self.cluster_sg = ec2.SecurityGroup(
            self, "ClusterSg", vpc=self.vpc, description="shopstream MSK brokers", allow_all_outbound=True)
        self.cluster_sg.add_ingress_rule(
            self.functions_sg, ec2.Port.tcp(MSK_IAM_TLS_PORT), "functions produce/consume with IAM auth")
        # Lambda's MSK pollers run with the cluster's security group: it must admit itself.
        self.cluster_sg.add_ingress_rule(
            self.cluster_sg, ec2.Port.tcp(MSK_IAM_TLS_PORT), "event source mapping pollers")

        # Gateway endpoints are free; interface endpoints cover what the functions and the MSK
        # event source mapping pollers call from inside the VPC (no NAT, no internet).
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        endpoints_sg = ec2.SecurityGroup(
            self, "EndpointsSg", vpc=self.vpc, description="VPC interface endpoints", allow_all_outbound=False)
        for source in (self.functions_sg, self.cluster_sg):
            endpoints_sg.add_ingress_rule(source, ec2.Port.tcp(443), "HTTPS to AWS APIs")
        for name, service in (
            ("Sqs", ec2.InterfaceVpcEndpointAwsService.SQS),
            ("Sts", ec2.InterfaceVpcEndpointAwsService.STS),
            ("Lambda", ec2.InterfaceVpcEndpointAwsService.LAMBDA_),
        ):
            self.vpc.add_interface_endpoint(name, service=service, private_dns_enabled=True, open=False,
                                            security_groups=[endpoints_sg])
