"""A service's Lambda functions: how each kind is made, what it may do, where it dead-letters.

IAM is written out statement by statement (no CDK grants, no managed policies), each naming this
service's own resources (docs/decisions.md, 2026-11-27).
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from shopstream import catalog, failed_batches, names, personal
from shopstream import tracing as tracing_settings
from stacks.config import EnvironmentConfig, log_retention
from stacks.kafka_arns import topic_arn
from stacks.layers import ARCHITECTURE, RUNTIME, layers_fingerprint
from stacks.nag import acknowledge, acknowledge_wildcard_resources
from stacks.network import NetworkStack
from stacks.platform import PlatformStack, audit_archive_bucket_name
from stacks.service.data import ServiceData
from stacks.service.monitoring import Monitoring

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
DLQ_RETENTION = cdk.Duration.days(failed_batches.DEAD_LETTER_RETENTION.days)
# The singleton function CDK adds to a stack for its buckets' notification configurations.
BUCKET_NOTIFICATIONS_HANDLER = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
                 "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                 "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"]
IDEMPOTENCY_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
# What Lambda needs to create the network interfaces of a VPC function or of an MSK event source
# mapping's pollers: https://docs.aws.amazon.com/lambda/latest/dg/with-msk-permissions.html
ENI_ACTIONS = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
               "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs",
               "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
LAMBDA_FUNCTION_NAME_MAX = 64  # https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html

# Where each kind of function runs (docs/decisions.md, 2026-11-29). Only the outbox relay opens
# its own connection to the brokers, so only the relay is in the VPC. A consumer is invoked by
# its MSK event source mapping, whose pollers reach the cluster through their own network
# interfaces (which the function's role lets Lambda create); the consumer itself calls
# DynamoDB, SQS, S3 and SES over their public endpoints.
#   kind       in VPC  ENI actions
#   consumer   no      yes (ESM)
#   relay      yes     yes
#   api        no      no
#   schedule   no      no
# Where direct publish is on, a consumer or API that publishes its events itself (catalog.DIRECT_PUBLISHERS: its
# environment says so) opens its own connection to the brokers too, so it runs in the VPC (docs/decisions.md,
# 2026-12-05).
# None has Lambda's active tracing: every function sends OpenTelemetry spans to X-Ray's OTLP endpoint itself
# (shopstream.tracing; docs/decisions.md, 2026-12-04), the relays through the VPC's X-Ray endpoint.
KINDS = {"consumer": (False, True), "relay": (True, True), "api": (False, False), "schedule": (False, False)}
# X-Ray's OTLP endpoint: PutSpans takes the spans, PutSpansForIndexing lets Transaction Search index them. Neither
# has resource-level permissions.
XRAY_OTLP_ACTIONS = ["xray:PutSpans", "xray:PutSpansForIndexing"]


@jsii.implements(lambda_.IEventSourceDlq)
class BucketDestination:
    """An S3 on-failure destination of a mapping: Lambda writes the whole invocation record (the records, not
    only their coordinates; shopstream/failed_batches.py). Unlike CDK's S3OnFailureDestination it grants
    nothing: the role's explicit statements allow what Lambda documents (give_up_into_failed_batches)."""

    def __init__(self, bucket: s3.IBucket):
        self.bucket = bucket

    def bind(self, _target: lambda_.IEventSourceMapping, _function: lambda_.IFunction) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self.bucket.bucket_arn)


@jsii.implements(lambda_.IDestination)
class AsyncFailureQueue:
    """On-failure destination of asynchronous invocations; like BucketDestination it grants nothing."""

    def __init__(self, queue: sqs.IQueue):
        self.queue = queue

    # jsii calls back with the options struct as a third positional argument (the generated interface
    # spells it as keyword arguments for callers), hence the signature mypy does not recognise.
    def bind(self, _scope: Construct, _fn: lambda_.IFunction,
             _options: lambda_.DestinationOptions | None = None) -> lambda_.DestinationConfig:
        return lambda_.DestinationConfig(destination=self.queue.queue_arn)


class ServiceFunctions:
    """Makes the service's functions and queues in ``scope`` and writes their permissions."""

    def __init__(self, scope: Construct, *, spec: catalog.ServiceSpec, config: EnvironmentConfig,
                 network: NetworkStack, platform: PlatformStack, data: ServiceData, monitoring: Monitoring,
                 layers: list[lambda_.ILayerVersion], bootstrap_servers: str, removal: cdk.RemovalPolicy,
                 cluster_arn: str):
        self.scope, self.spec, self.config, self.network, self.platform = scope, spec, config, network, platform
        self.data, self.monitoring, self.layers = data, monitoring, layers
        self.bootstrap_servers, self.removal, self.cluster_arn = bootstrap_servers, removal, cluster_arn
        self.functions: dict[str, lambda_.Function] = {}
        self.queues: dict[str, sqs.Queue] = {}
        self.notifications_acknowledged = False
        self.code = lambda_.Code.from_asset(
            str(FUNCTIONS_DIR),
            exclude=["*", f"!{spec.name}", f"!{spec.name}/**", "**/__pycache__", "**/*.pyc", "**/tests"],
        )

    # --- functions ----------------------------------------------------------------------
    def entry_point(self, module: str, attribute: str) -> str:
        """The handler setting of one of this service's functions (shopstream.names: which module holds which)."""
        return names.entry_point(self.spec.name, module, attribute)

    def create(self, name: str, handler: str, *, kind: str, environment: dict[str, str],
               timeout: cdk.Duration = cdk.Duration.seconds(60), memory: int = 512,
               snap_start: bool = False, unscoped: str | None = None) -> lambda_.Function:
        """``unscoped``: what else the function is allowed on every resource ("*"), for the acknowledgement."""
        in_vpc, eni_actions = KINDS[kind]
        publishes_directly = kind != "relay" and environment.get(catalog.DIRECT_PUBLISH_ENV) == "true"
        if publishes_directly:
            in_vpc = eni_actions = True
        function_name = names.function(self.config.prefix, self.spec.name, name)
        if len(function_name) > LAMBDA_FUNCTION_NAME_MAX:
            raise ValueError(f"function name {function_name!r} has {len(function_name)} characters; Lambda allows "
                             f"{LAMBDA_FUNCTION_NAME_MAX} (shorten the environment name)")
        log_group = logs.LogGroup(self.scope, f"{name}Logs", retention=log_retention(self.config.log_retention_days),
                                  removal_policy=self.removal)
        role = iam.Role(self.scope, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"shopstream {self.spec.name} {name}")
        # The logging and network-interface permissions, written out instead of the AWS managed policies.
        log_group.grant_write(role)
        if eni_actions:
            role.add_to_policy(iam.PolicyStatement(actions=ENI_ACTIONS, resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(actions=XRAY_OTLP_ACTIONS, resources=["*"]))
        network = ({"vpc": self.network.vpc,
                    "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
                    "security_groups": [self.network.functions_sg]} if in_vpc else {})
        function = lambda_.Function(
            self.scope, name,
            function_name=function_name,
            runtime=RUNTIME, architecture=ARCHITECTURE,
            handler=handler, code=self.code, layers=self.layers,
            role=role, log_group=log_group, timeout=timeout, memory_size=memory,
            **network,  # type: ignore[arg-type]
            tracing=lambda_.Tracing.DISABLED,
            environment={**environment, "POWERTOOLS_METRICS_FUNCTION_NAME": name, "POWERTOOLS_TRACE_DISABLED": "true",
                         tracing_settings.EXPORT_ENV: "xray",
                         tracing_settings.SAMPLE_RATE_ENV: f"{self.config.trace_sample_rate:g}"},
            # Cold starts on the synchronous path: restore from a snapshot of the initialised function.
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
        )
        # The layer ARNs arrive as deploy-time parameters: a published version must still change
        # whenever a layer's content does.
        function.invalidate_version_based_on(layers_fingerprint())
        if publishes_directly:
            self.allow_producing(function)
        wildcards = [what for what, needed in (("ec2 network-interface actions (VPC access, MSK event source "
                                               "mapping pollers)", eni_actions), ("X-Ray span writes (OTLP)", True),
                                              (unscoped, unscoped is not None)) if needed]
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                    f"{' and '.join(str(w) for w in wildcards)} support no resource-level permissions")
        self.functions[name] = function
        return function

    def environment(self, handler: catalog.HandlerSpec | None = None, dlq: sqs.Queue | None = None, *,
                    api: bool = False, relay: bool = False) -> dict[str, str]:
        return catalog.function_environment(
            self.spec, environment=self.config.name, table_name=self.data.table.table_name,
            idempotency_table_name=self.data.idempotency_table.table_name, bootstrap_servers=self.bootstrap_servers,
            kafka_auth="iam", handler=handler, dlq_url=dlq.queue_url if dlq else None,
            log_level="INFO", audit_archive_bucket=audit_archive_bucket_name(self.config),
            notification_channel="ses", customer_keys_table=self.platform.customer_keys.table_name,
            customer_data_key=self.platform.customer_data_key.key_arn,
            user_pool_id=self.platform.user_pool.user_pool_id,
            request_fingerprint_key=self.platform.request_fingerprint_key.key_arn, api=api, relay=relay,
            direct_publish=self.config.direct_publish, extra=self.config.service_settings(self.spec.name),
        )

    def dead_letter_queue(self, name: str, owner: str) -> sqs.Queue:
        """Named by ``shopstream.names`` on AWS and locally (tools/ops.py finds it by name); alarmed."""
        queue = sqs.Queue(
            self.scope, f"{name}Dlq",
            queue_name=names.dead_letter_queue(self.config.prefix, self.spec.name, owner),
            encryption=sqs.QueueEncryption.KMS, encryption_master_key=self.data.key,
            enforce_ssl=True, retention_period=DLQ_RETENTION, removal_policy=self.removal,
        )
        acknowledge(queue, "AwsSolutions-SQS3",
                    "this queue is itself a dead-letter queue (poison records and ESM/stream failures)")
        self.monitoring.dead_letters_waiting(name, queue)
        self.queues[name] = queue
        return queue

    # --- permissions (explicit, so every statement names this service's own resources) -----
    @staticmethod
    def allow(function: lambda_.Function, actions: list[str], resources: list[str]) -> None:
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))

    def allow_table(self, function: lambda_.Function) -> None:
        arn = self.data.table.table_arn
        self.allow(function, TABLE_ACTIONS, [arn, *(f"{arn}/index/{i}" for i, _, _ in catalog.SERVICE_TABLE.indexes)])

    def allow_producing(self, function: lambda_.Function) -> None:
        """Produce the service's events to MSK with IAM, idempotently (the relay, and a direct publisher)."""
        self.allow(function, ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"], [self.cluster_arn])
        self.allow(function, ["kafka-cluster:WriteDataIdempotently"], [self.cluster_arn])
        if self.spec.produces_topics:
            self.allow(function, ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                       [topic_arn(self.cluster_arn, t) for t in self.spec.produces_topics])

    def allow_idempotency(self, function: lambda_.Function) -> None:
        self.allow(function, IDEMPOTENCY_ACTIONS, [self.data.idempotency_table.table_arn])

    def allow_request_fingerprints(self, function: lambda_.Function) -> None:
        """An API with a creating route fingerprints bodies for their Idempotency-Key (shopstream.key_binding)."""
        self.allow(function, ["kms:GenerateMac"], [self.platform.request_fingerprint_key.key_arn])

    def allow_dead_letters(self, function: lambda_.Function, queue: sqs.Queue) -> None:
        self.allow(function, ["sqs:SendMessage", "sqs:GetQueueAttributes"], [queue.queue_arn])
        # SSE-KMS producers need a data key; nothing else of the key.
        self.allow(function, ["kms:GenerateDataKey", "kms:Decrypt"], [self.data.key.key_arn])

    def give_up_into_failed_batches(self, mapping: lambda_.EventSourceMapping, function: lambda_.Function,
                                    queue: sqs.Queue) -> None:
        """The mapping's on-failure destination is the service's failed-batch bucket: its role may write there
        (the actions Lambda documents for an S3 destination), and each object under the mapping's prefix is
        announced to its dead-letter queue."""
        bucket = self.data.failed_batches
        objects = bucket.arn_for_objects(f"{failed_batches.OBJECT_PREFIX}*")
        self.allow(function, ["s3:PutObject"], [objects])
        self.allow(function, ["s3:ListBucket"], [bucket.bucket_arn])
        assert function.role is not None
        acknowledge_wildcard_resources(function.role, [objects], "the mapping writes each given-up batch as a new "
                                       "object (Lambda names it) under aws/lambda/ of its own bucket")
        prefix = cdk.Fn.join("", [failed_batches.OBJECT_PREFIX, mapping.event_source_mapping_id, "/"])
        bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(queue),
                                      s3.NotificationKeyFilter(prefix=prefix))
        handler = cdk.Stack.of(self.scope).node.try_find_child(BUCKET_NOTIFICATIONS_HANDLER)
        if handler is not None and not self.notifications_acknowledged:
            self.notifications_acknowledged = True
            for rule in ("AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                         "AWSLambdaBasicExecutionRole]", "AwsSolutions-IAM5[Resource::*]"):
                acknowledge(handler, rule, "CDK's bucket-notifications provider (PutBucketNotification supports no "
                                           "resource scoping there; its logging role is chosen by aws-cdk-lib)")

    def allow_needs(self, function: lambda_.Function, handler: catalog.HandlerSpec) -> None:
        self.allow_needed(function, handler.needs)

    def allow_needed(self, function: lambda_.Function, needs: tuple[str, ...]) -> None:
        """What a consumer's (HandlerSpec.needs) or the API's (ServiceSpec.api_needs) needs call for."""
        role = function.role
        assert role is not None
        self._allow_personal(function, needs)
        if "identity" in needs:
            self.allow(function, ["cognito-idp:AdminDeleteUser"], [self.platform.user_pool.user_pool_arn])
        if "audit-archive" in needs:
            objects = f"arn:{cdk.Aws.PARTITION}:s3:::{audit_archive_bucket_name(self.config)}/*"
            self.allow(function, ["s3:PutObject"], [objects])
            archive_key = self.platform.audit_archive.encryption_key
            assert archive_key is not None
            self.allow(function, ["kms:GenerateDataKey"], [archive_key.key_arn])
            acknowledge_wildcard_resources(role, [objects],
                                           "the audit trail writes new objects (any key) into the archive bucket "
                                           "only")
        if "email" in needs:
            identity = f"arn:{cdk.Aws.PARTITION}:ses:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:identity/*"
            self.allow(function, ["ses:SendEmail"], [identity])
            acknowledge_wildcard_resources(role, [identity],
                                           "sends from the verified shop identity to customers' addresses; SES "
                                           "authorises recipient identities, which are not known in advance")

    def _allow_personal(self, function: lambda_.Function, needs: tuple[str, ...]) -> None:
        """The customer key store: sealing reads a public half; opening also decrypts a customer's key (with
        the customer-data key, only for an encryption context naming a customer); the user API creates keys
        and deletes them on erasure. Nobody may schedule the KMS key's deletion or decrypt other contexts."""
        keys, cmk = self.platform.customer_keys.table_arn, self.platform.customer_data_key.key_arn
        customer_context = {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": [personal.CONTEXT_KEY]},
                            "Null": {f"kms:EncryptionContext:{personal.CONTEXT_KEY}": "false"}}
        if set(needs) & set(catalog.PERSONAL_NEEDS):
            self.allow(function, ["dynamodb:GetItem"], [keys])
        if "personal-check" in needs:
            self.allow(function, ["dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"], [keys])
        if "customer-keys" in needs:
            self.allow(function, ["dynamodb:PutItem", "dynamodb:DeleteItem"], [keys])
            function.add_to_role_policy(iam.PolicyStatement(actions=["kms:GenerateDataKey"], resources=[cmk],
                                                            conditions=customer_context))
        if set(needs) & {"personal-open", "customer-keys"}:
            function.add_to_role_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[cmk],
                                                            conditions=customer_context))
