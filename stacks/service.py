"""One ServiceConstruct per catalog service: its tables, functions, mappings, queues, routes, alarms."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from shopstream import catalog
from shopstream.filters import esm_filter_patterns
from stacks.config import EnvironmentConfig, log_retention
from stacks.kafka_arns import group_arn, topic_arn
from stacks.layers import ARCHITECTURE, RUNTIME, deployed_layers, layers_fingerprint
from stacks.messaging import bootstrap_servers_parameter_name
from stacks.nag import acknowledge, acknowledge_wildcard_resources
from stacks.network import NetworkStack
from stacks.platform import PlatformStack, audit_archive_bucket_name

FUNCTIONS_DIR = Path(__file__).resolve().parents[1] / "functions"
RELAY_HANDLER = "shopstream.outbox.relay_handler"  # shipped in the shared layer
DLQ_RETENTION = cdk.Duration.days(14)
TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
                 "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                 "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"]
IDEMPOTENCY_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
# What Lambda needs to create the network interfaces of a VPC function or of an MSK event source
# mapping's pollers: https://docs.aws.amazon.com/lambda/latest/dg/with-msk-permissions.html
ENI_ACTIONS = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
               "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs",
               "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
# The actions Lambda's documentation lists for an MSK event source mapping with IAM authentication
# (https://docs.aws.amazon.com/lambda/latest/dg/with-msk-permissions.html), by the resource they apply to.
MSK_ESM_CLUSTER_ACTIONS = ["kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"]
MSK_ESM_TOPIC_ACTIONS = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
MSK_ESM_GROUP_ACTIONS = ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
MSK_ESM_API_ACTIONS = ["kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"]
LAMBDA_FUNCTION_NAME_MAX = 64  # https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html


def construct_name(entry: str) -> str:
    """``order_reservations`` -> ``OrderReservations``."""
    return entry.title().replace("_", "")


@jsii.implements(lambda_.IEventSourceDlq)
class QueueDestination:
    """On-failure destination of a mapping. Unlike SqsDlq it grants nothing: the role's
    explicit statements already allow SendMessage and the key's GenerateDataKey/Decrypt."""

    def __init__(self, queue: sqs.IQueue):
        self.queue = queue

    def bind(self, _target: lambda_.IEventSourceMapping, _function: lambda_.IFunction) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self.queue.queue_arn)


@jsii.implements(lambda_.IDestination)
class AsyncFailureQueue:
    """On-failure destination of asynchronous invocations; like QueueDestination it grants nothing."""

    def __init__(self, queue: sqs.IQueue):
        self.queue = queue

    def bind(self, _scope: Construct, _fn: lambda_.IFunction,
             _options: lambda_.DestinationOptions | None = None) -> lambda_.DestinationConfig:
        return lambda_.DestinationConfig(destination=self.queue.queue_arn)


class ServiceConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, spec: catalog.ServiceSpec,
                 config: EnvironmentConfig, network: NetworkStack, platform: PlatformStack,
                 cluster_arn: str) -> None:
        super().__init__(scope, construct_id)
        self.spec, self.config, self.network, self.platform = spec, config, network, platform
        self.cluster_arn = cluster_arn
        # Values that change between deploys come from SSM, resolved by CloudFormation at deploy time.
        self.bootstrap_servers = ssm.StringParameter.value_for_string_parameter(
            self, bootstrap_servers_parameter_name(config))
        self.layers = deployed_layers(self, config.ssm_prefix)
        self.removal = cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY
        self.functions: dict[str, lambda_.Function] = {}
        self.queues: dict[str, sqs.Queue] = {}

        self.key = kms.Key(self, "Key", enable_key_rotation=True, removal_policy=self.removal,
                           description=f"shopstream {spec.name}: dead-letter queues")
        self.table = self._table()
        self.idempotency_table = self._idempotency_table()
        self.code = lambda_.Code.from_asset(
            str(FUNCTIONS_DIR),
            exclude=["*", f"!{spec.name}", f"!{spec.name}/**", "**/__pycache__", "**/*.pyc", "**/tests"],
        )

        for handler in spec.handlers:
            self._consumer(handler)
        self._relay()
        if spec.routes:
            self._api()
        for schedule in spec.schedules:
            self._schedule(schedule)
        self._dashboard()

    # --- storage ------------------------------------------------------------------------
    def _table(self) -> dynamodb.Table:
        shape = catalog.SERVICE_TABLE
        table = dynamodb.Table(
            self, "Table",
            partition_key=dynamodb.Attribute(name=shape.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=shape.sort_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            time_to_live_attribute=shape.ttl_attribute,
            removal_policy=self.removal,
        )
        for index, pk, sk in shape.indexes:
            table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=pk, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=sk, type=dynamodb.AttributeType.STRING),
            )
        return table

    def _idempotency_table(self) -> dynamodb.Table:
        shape = catalog.IDEMPOTENCY_TABLE
        return dynamodb.Table(
            self, "IdempotencyTable",
            partition_key=dynamodb.Attribute(name=shape.partition_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            time_to_live_attribute=shape.ttl_attribute,
            removal_policy=self.removal,
        )

    def _dead_letter_queue(self, name: str, dlq_suffix: str) -> sqs.Queue:
        """Named ``<prefix>-<service>-<handler>-dlq`` on AWS and locally (tools/ops.py finds it by name)."""
        queue = sqs.Queue(
            self, f"{name}Dlq",
            queue_name=f"{self.config.prefix}-{self.spec.name}-{dlq_suffix}-dlq",
            encryption=sqs.QueueEncryption.KMS, encryption_master_key=self.key,
            enforce_ssl=True, retention_period=DLQ_RETENTION, removal_policy=self.removal,
        )
        acknowledge(queue, "AwsSolutions-SQS3",
                    "this queue is itself a dead-letter queue (poison records and ESM/stream failures)")
        alarm = cloudwatch.Alarm(
            self, f"{name}DlqNotEmpty",
            metric=queue.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(1),
                                                                        statistic="Maximum"),
            threshold=0, comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{self.spec.name}/{name}: records are waiting in the dead-letter queue "
                              "(see docs/runbooks/dlq.md)",
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.platform.alarm_topic))
        self.queues[name] = queue
        return queue

    # --- permissions (explicit, so every statement names this service's own resources) -----
    @staticmethod
    def _allow(function: lambda_.Function, actions: list[str], resources: list[str]) -> None:
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))

    def _allow_table(self, function: lambda_.Function) -> None:
        arn = self.table.table_arn
        self._allow(function, TABLE_ACTIONS, [arn, *(f"{arn}/index/{i}" for i, _, _ in catalog.SERVICE_TABLE.indexes)])

    def _allow_idempotency(self, function: lambda_.Function) -> None:
        self._allow(function, IDEMPOTENCY_ACTIONS, [self.idempotency_table.table_arn])

    def _allow_dead_letters(self, function: lambda_.Function, queue: sqs.Queue) -> None:
        self._allow(function, ["sqs:SendMessage", "sqs:GetQueueAttributes"], [queue.queue_arn])
        # SSE-KMS producers need a data key; nothing else of the key.
        self._allow(function, ["kms:GenerateDataKey", "kms:Decrypt"], [self.key.key_arn])

    def _allow_needs(self, function: lambda_.Function, handler: catalog.HandlerSpec) -> None:
        if "audit-archive" in handler.needs:
            objects = f"arn:{cdk.Aws.PARTITION}:s3:::{audit_archive_bucket_name(self.config)}/*"
            self._allow(function, ["s3:PutObject"], [objects])
            self._allow(function, ["kms:GenerateDataKey"], [self.platform.audit_archive.encryption_key.key_arn])
            acknowledge_wildcard_resources(function.role, [objects],
                                           "the audit trail writes new objects (any key) into the archive bucket "
                                           "only")
        if "email" in handler.needs:
            identity = f"arn:{cdk.Aws.PARTITION}:ses:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:identity/*"
            self._allow(function, ["ses:SendEmail"], [identity])
            acknowledge_wildcard_resources(function.role, [identity],
                                           "sends from the verified shop identity to customers' addresses; SES "
                                           "authorises recipient identities, which are not known in advance")

    def _allow_kafka_connect(self, function: lambda_.Function) -> None:
        self._allow(function, ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"], [self.cluster_arn])

    # --- functions ----------------------------------------------------------------------
    # Where each kind of function runs (docs/decisions.md, 2026-11-29). Only the outbox relay opens
    # its own connection to the brokers, so only the relay is in the VPC. A consumer is invoked by
    # its MSK event source mapping, whose pollers reach the cluster through their own network
    # interfaces (which the function's role lets Lambda create); the consumer itself calls
    # DynamoDB, SQS, S3 and SES over their public endpoints.
    #   kind       in VPC  ENI actions  X-Ray active
    #   consumer   no      yes (ESM)    no: unsupported behind MSK mappings
    #   relay      yes     yes          no: no trace context arrives from the stream
    #   api        no      no           yes
    #   schedule   no      no           yes
    KINDS = {"consumer": (False, True, False), "relay": (True, True, False),
             "api": (False, False, True), "schedule": (False, False, True)}

    def _function(self, name: str, handler: str, *, kind: str, environment: dict[str, str],
                  timeout: cdk.Duration = cdk.Duration.seconds(60), memory: int = 512,
                  snap_start: bool = False) -> lambda_.Function:
        in_vpc, eni_actions, traced = self.KINDS[kind]
        function_name = f"{self.config.prefix}-{self.spec.name}-{name}"
        if len(function_name) > LAMBDA_FUNCTION_NAME_MAX:
            raise ValueError(f"function name {function_name!r} has {len(function_name)} characters; Lambda allows "
                             f"{LAMBDA_FUNCTION_NAME_MAX} (shorten the environment name)")
        log_group = logs.LogGroup(self, f"{name}Logs", retention=log_retention(self.config.log_retention_days),
                                  removal_policy=self.removal)
        role = iam.Role(self, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"shopstream {self.spec.name} {name}")
        # The logging and network-interface permissions, written out instead of the AWS managed policies.
        log_group.grant_write(role)
        if eni_actions:
            role.add_to_policy(iam.PolicyStatement(actions=ENI_ACTIONS, resources=["*"]))
        function = lambda_.Function(
            self, name,
            function_name=function_name,
            runtime=RUNTIME, architecture=ARCHITECTURE,
            handler=handler, code=self.code, layers=self.layers,
            role=role, log_group=log_group, timeout=timeout, memory_size=memory,
            **({"vpc": self.network.vpc,
                "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
                "security_groups": [self.network.functions_sg]} if in_vpc else {}),
            tracing=lambda_.Tracing.ACTIVE if traced else lambda_.Tracing.DISABLED,
            environment={**environment, "POWERTOOLS_METRICS_FUNCTION_NAME": name,
                         **({} if traced else {"POWERTOOLS_TRACE_DISABLED": "true"})},
            # Cold starts on the synchronous path: restore from a snapshot of the initialised function.
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
        )
        # The layer ARNs arrive as deploy-time parameters: a published version must still change
        # whenever a layer's content does.
        function.invalidate_version_based_on(layers_fingerprint())
        unscoped = [what for what, needed in (("ec2 network-interface actions (VPC access, MSK event source "
                                              "mapping pollers)", eni_actions), ("X-Ray trace writes", traced))
                    if needed]
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                    f"{' and '.join(unscoped)} support no resource-level permissions")
        self.functions[name] = function
        return function

    def _environment(self, handler: catalog.HandlerSpec | None = None, dlq: sqs.Queue | None = None) -> dict[str, str]:
        return catalog.function_environment(
            self.spec, environment=self.config.name, table_name=self.table.table_name,
            idempotency_table_name=self.idempotency_table.table_name, bootstrap_servers=self.bootstrap_servers,
            kafka_auth="iam", handler=handler, dlq_url=dlq.queue_url if dlq else None,
            log_level="INFO", audit_archive_bucket=audit_archive_bucket_name(self.config),
            notification_channel="ses",
        )

    def _consumer(self, handler: catalog.HandlerSpec) -> None:
        name = construct_name(handler.entry)
        dlq = self._dead_letter_queue(name, handler.name)
        function = self._function(name, f"{self.spec.name}.handlers.{handler.entry}", kind="consumer",
                                  environment=self._environment(handler, dlq))
        self._allow_table(function)
        self._allow_idempotency(function)
        self._allow_dead_letters(function, dlq)
        self._allow_needs(function, handler)
        group = catalog.consumer_group_id(self.spec.name, handler.name)
        # The mapping's pollers read with the function's role (instead of AWSLambdaMSKExecutionRole).
        self._allow(function, MSK_ESM_CLUSTER_ACTIONS, [self.cluster_arn])
        self._allow(function, MSK_ESM_TOPIC_ACTIONS, [topic_arn(self.cluster_arn, handler.topic)])
        self._allow(function, MSK_ESM_GROUP_ACTIONS, [group_arn(self.cluster_arn, group)])
        self._allow(function, MSK_ESM_API_ACTIONS, [self.cluster_arn])
        topic = catalog.topic(handler.topic)
        patterns = esm_filter_patterns(handler)
        lambda_.EventSourceMapping(
            self, f"{name}Mapping",
            target=function,
            event_source_arn=self.cluster_arn,
            kafka_topic=handler.topic,
            kafka_consumer_group_id=group,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=handler.batch_size,
            max_batching_window=cdk.Duration.seconds(handler.max_batching_window_seconds),
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=handler.retry_attempts,
            max_record_age=cdk.Duration.seconds(handler.max_record_age_seconds),
            on_failure=QueueDestination(dlq),
            filters=[lambda_.FilterCriteria.filter(p) for p in patterns] or None,
            provisioned_poller_config=lambda_.ProvisionedPollerConfig(
                minimum_pollers=1, maximum_pollers=max(1, topic.partitions)),
        )

    def _relay(self) -> None:
        dlq = self._dead_letter_queue("Relay", "relay")
        function = self._function("Relay", RELAY_HANDLER, kind="relay", environment=self._environment(),
                                  timeout=cdk.Duration.seconds(30))
        self._allow_dead_letters(function, dlq)
        self._relay_lag_alarm(function)
        stream_arn = self.table.table_stream_arn
        assert stream_arn is not None
        self._allow(function, ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                    [stream_arn])
        self._allow(function, ["dynamodb:ListStreams"], [f"{self.table.table_arn}/stream/*"])
        self._allow_kafka_connect(function)
        self._allow(function, ["kafka-cluster:WriteDataIdempotently"], [self.cluster_arn])
        if self.spec.produces_topics:
            self._allow(function, ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                        [topic_arn(self.cluster_arn, t) for t in self.spec.produces_topics])
        acknowledge(function.role, "AwsSolutions-IAM5[Resource::<ServiceTable603BACCB.Arn>/stream/*]",
                    "ListStreams is granted on this service's own table streams only (stream ids change)")
        lambda_.EventSourceMapping(
            self, "RelayMapping",
            target=function,
            event_source_arn=stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=100,
            max_batching_window=cdk.Duration.seconds(1),
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            # Keep retrying through a broker outage (the shard waits, so its order is kept); give a batch
            # up only after 12 h, well inside the stream's 24 h and the outbox items' 4 days, from which
            # `ops dlq redrive --handler <service>.relay` republishes it (docs/runbooks/dlq.md).
            retry_attempts=10_000,
            max_record_age=cdk.Duration.hours(12),
            on_failure=QueueDestination(dlq),
            # Only outbox inserts reach the relay.
            filters=[lambda_.FilterCriteria.filter({
                "eventName": lambda_.FilterRule.is_equal("INSERT"),
                "dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.begins_with("OUTBOX#")}}},
            })],
        )

    def _relay_lag_alarm(self, function: lambda_.Function) -> None:
        """The relay is falling behind (a broker outage, a failing publish): page long before the batch
        is given up (12 h) and far before anything needed to redrive it expires (4 days)."""
        age = cloudwatch.Metric(namespace="AWS/Lambda", metric_name="IteratorAge",
                                dimensions_map={"FunctionName": function.function_name},
                                statistic="Maximum", period=cdk.Duration.minutes(5))
        alarm = cloudwatch.Alarm(self, "RelayIteratorAge", metric=age, threshold=15 * 60 * 1000,
                                 evaluation_periods=3,
                                 comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                 treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                                 alarm_description=f"{self.spec.name} outbox relay is more than 15 minutes behind "
                                                   "(see docs/runbooks/dlq.md, relay failures)")
        alarm.add_alarm_action(cw_actions.SnsAction(self.platform.alarm_topic))

    def _api(self) -> None:
        function = self._function("Api", f"{self.spec.name}.handlers.{self.spec.api_entry}", kind="api",
                                  environment=self._environment(), timeout=cdk.Duration.seconds(10), snap_start=True)
        self._allow_table(function)
        if any(route.idempotent for route in self.spec.routes):
            self._allow_idempotency(function)  # Idempotency-Key on creating POSTs
        # SnapStart applies to published versions: the routes call the alias of the current one.
        live = lambda_.Alias(self, "ApiLive", alias_name="live", version=function.current_version)
        integration = integrations.HttpLambdaIntegration("Integration", live)
        for route in self.spec.routes:
            apigwv2.HttpRoute(
                self, f"Route{route.method}{route.path}".replace("/", "_").replace("{", "").replace("}", ""),
                http_api=self.platform.api,
                route_key=apigwv2.HttpRouteKey.with_(route.path, apigwv2.HttpMethod(route.method)),
                integration=integration,
                authorizer=None if route.public else self.platform.authorizer,
            )

    def _schedule(self, schedule: catalog.ScheduleSpec) -> None:
        name = construct_name(schedule.entry)
        function = self._function(name, f"{self.spec.name}.handlers.{schedule.entry}", kind="schedule",
                                  environment=self._environment(), timeout=cdk.Duration.minutes(5))
        self._allow_table(function)
        # EventBridge invokes asynchronously: after Lambda's own retries a failed run would be dropped.
        # It goes to a dead-letter queue instead (https://docs.aws.amazon.com/lambda/latest/dg/
        # invocation-async-retain-records.html), which is alarmed like the others.
        dlq = self._dead_letter_queue(name, schedule.name)
        self._allow_dead_letters(function, dlq)
        function.configure_async_invoke(on_failure=AsyncFailureQueue(dlq), retry_attempts=2)
        events.Rule(self, f"{name}Every{schedule.every_minutes}m",
                    schedule=events.Schedule.rate(cdk.Duration.minutes(schedule.every_minutes)),
                    targets=[targets.LambdaFunction(function, retry_attempts=2)])

    # --- observability ------------------------------------------------------------------
    def _dashboard(self) -> None:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{self.config.prefix}-{self.spec.name}")
        for name, function in self.functions.items():
            errors = function.metric_errors(period=cdk.Duration.minutes(5))
            alarm = cloudwatch.Alarm(self, f"{name}Errors", metric=errors, threshold=0,
                                     comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                     evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                                     alarm_description=f"{self.spec.name}/{name} function errors")
            alarm.add_alarm_action(cw_actions.SnsAction(self.platform.alarm_topic))
            dashboard.add_widgets(cloudwatch.GraphWidget(
                title=f"{name}", width=12,
                left=[function.metric_invocations(), errors, function.metric_throttles()],
                right=[function.metric_duration(statistic="p99")]))
        for handler in self.spec.handlers:
            function = self.functions[construct_name(handler.entry)]
            lag = cloudwatch.Metric(namespace="AWS/Lambda", metric_name="OffsetLag",
                                    dimensions_map={"FunctionName": function.function_name},
                                    statistic="Maximum", period=cdk.Duration.minutes(1))
            alarm = cloudwatch.Alarm(self, f"{construct_name(handler.entry)}OffsetLag", metric=lag,
                                     threshold=10_000, evaluation_periods=5,
                                     comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                     treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                                     alarm_description=f"{self.spec.name}/{handler.name} is falling behind "
                                                       f"on {handler.topic}")
            alarm.add_alarm_action(cw_actions.SnsAction(self.platform.alarm_topic))


class ServiceStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, spec: catalog.ServiceSpec, **props) -> None:
        stack_props = {k: props.pop(k) for k in ("env", "description") if k in props}
        super().__init__(scope, construct_id, **stack_props)
        self.service = ServiceConstruct(self, "Service", spec=spec, **props)
        cdk.CfnOutput(self, "TableName", value=self.service.table.table_name)  # found by tools/ops.py
        if spec.routes:
            cdk.CfnOutput(self, "Routes", value=json.dumps([f"{r.method} {r.path}" for r in spec.routes]))
