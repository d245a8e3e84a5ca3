"""A service's asynchronous entry points: a function per handler behind an MSK event source mapping,
the outbox relay behind the table's stream, and the scheduled sweepers."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from shopstream import catalog, names
from shopstream.filters import esm_filter_patterns
from shopstream.outbox import OUTBOX_PREFIX
from stacks.kafka_arns import group_arn, topic_arn
from stacks.service.functions import AsyncFailureQueue, BucketDestination, ServiceFunctions

RELAY_HANDLER = "shopstream.relay.relay_handler"  # shipped in the shared layer
# The actions Lambda's documentation lists for an MSK event source mapping with IAM authentication
# (https://docs.aws.amazon.com/lambda/latest/dg/with-msk-permissions.html), by the resource they apply to.
MSK_ESM_CLUSTER_ACTIONS = ["kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"]
MSK_ESM_TOPIC_ACTIONS = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
MSK_ESM_GROUP_ACTIONS = ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
MSK_ESM_API_ACTIONS = ["kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"]
MSK_MAPPING_METRICS = [lambda_.MetricType.EVENT_COUNT, lambda_.MetricType.ERROR_COUNT,
                       lambda_.MetricType.KAFKA_METRICS]


def relays_critical_path(spec: catalog.ServiceSpec) -> bool:
    """Whether the service publishes an event that a critical-path handler consumes."""
    wanted = {name for s in catalog.SERVICES for h in s.handlers if h.critical_path for name in h.event_types}
    return bool(wanted & set(spec.publishes))


class ServiceConsumers:
    def __init__(self, scope: Construct, functions: ServiceFunctions, *, cluster_arn: str):
        self.scope, self.functions, self.cluster_arn = scope, functions, cluster_arn
        self.spec = functions.spec

    def consumer(self, handler: catalog.HandlerSpec) -> None:
        f = self.functions
        name = names.construct(handler.entry)
        dlq = f.dead_letter_queue(name, handler.name)
        config = f.config
        function = f.create(name, f.entry_point(names.CONSUMERS_MODULE, handler.entry), kind="consumer",
                            environment={**f.environment(handler, dlq), **config.consumer_settings()},
                            timeout=cdk.Duration.seconds(handler.timeout_seconds))
        f.allow_table(function)
        if handler.idempotency:
            f.allow_idempotency(function)
        f.allow_dead_letters(function, dlq)
        f.allow_needs(function, handler)
        group = catalog.consumer_group_id(self.spec.name, handler.name)
        # The mapping's pollers read with the function's role (instead of AWSLambdaMSKExecutionRole).
        f.allow(function, MSK_ESM_CLUSTER_ACTIONS, [self.cluster_arn])
        f.allow(function, MSK_ESM_TOPIC_ACTIONS, [topic_arn(self.cluster_arn, handler.topic)])
        f.allow(function, MSK_ESM_GROUP_ACTIONS, [group_arn(self.cluster_arn, group)])
        f.allow(function, MSK_ESM_API_ACTIONS, [self.cluster_arn])
        patterns = esm_filter_patterns(handler)
        mapping = lambda_.EventSourceMapping(
            self.scope, f"{name}Mapping",
            target=function,
            event_source_arn=self.cluster_arn,
            kafka_topic=handler.topic,
            kafka_consumer_group_id=group,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=handler.batch_size,
            max_batching_window=cdk.Duration.seconds(handler.max_batching_window_seconds),
            # The records themselves, not only their offsets: they outlive the topic's retention.
            on_failure=BucketDestination(f.data.failed_batches),
            filters=[lambda_.FilterCriteria.filter(p) for p in patterns] or None,
            # On demand (cdk.json eventPollers.mode; docs/decisions.md, 2026-12-05) none of Kafka's error-handling
            # controls ("select Provisioned mode to configure error handling controls",
            # https://docs.aws.amazon.com/lambda/latest/dg/kafka-retry-configurations.html): a failed batch is retried
            # whole until its records leave the topic, and the consumer fails a batch whole (consumer_settings). No
            # mapping metrics (each billed) nor system logs (provisioned only): the function's OffsetLag is watched.
            **({} if config.on_demand_pollers else self._provisioned(handler)),
        )
        f.give_up_into_failed_batches(mapping, function, dlq)
        if config.on_demand_pollers:
            f.monitoring.mapping_behind(name, handler, function)
        else:
            f.monitoring.mapping_behind_or_dropping(name, handler, mapping, function)

    def _provisioned(self, handler: catalog.HandlerSpec) -> dict[str, Any]:
        """Provisioned mode: Kafka's error-handling controls (bisect, bounded retries, record age, partial batch
        response), the mapping's metrics and system logs, and reaching the cluster without Lambda/STS endpoints
        need it. Pollers are shared within a group (docs/decisions.md, 2026-11-29)."""
        config = self.functions.config
        minimum, maximum = config.pollers(handler)
        return {
            "report_batch_item_failures": True,
            "bisect_batch_on_error": True,
            "retry_attempts": handler.retry_attempts,
            "max_record_age": cdk.Duration.seconds(handler.max_record_age_seconds),
            "provisioned_poller_config": lambda_.ProvisionedPollerConfig(
                minimum_pollers=minimum, maximum_pollers=maximum, poller_group_name=config.poller_group(handler)),
            # Every metric group a Kafka mapping offers (events polled, invoked, committed, dropped; polling, invoke
            # and commit errors; offset lag): off unless asked for. Monitoring alarms on them.
            # https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html#event-source-mapping-metrics
            "metrics_config": lambda_.MetricsConfig(metrics=MSK_MAPPING_METRICS),
            # The pollers' own system logs (provisioned mode, Kafka only), into the function's log group: warnings
            # and errors only. https://docs.aws.amazon.com/lambda/latest/dg/esm-logging.html
            "log_level": lambda_.EventSourceMappingLogLevel.WARN,
        }

    def relay(self) -> None:
        f = self.functions
        dlq = f.dead_letter_queue("Relay", names.RELAY)
        environment = f.environment(relay=True)
        # The fallback of functions that publish directly (shopstream.direct): it reads back their items.
        fallback = environment.get(catalog.DIRECT_PUBLISH_ENV) == "true"
        function = f.create("Relay", RELAY_HANDLER, kind="relay", environment=environment,
                            timeout=cdk.Duration.seconds(30),
                            unscoped="dynamodb:ListStreams (the stream's pollers list the table's streams)")
        f.allow_dead_letters(function, dlq)
        f.monitoring.relay_behind(function)
        table = f.data.table
        stream_arn = table.table_stream_arn
        assert stream_arn is not None
        f.allow(function, ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                [stream_arn])
        # ListStreams takes no resource: only "*" grants it (no resource types in the Service Authorization
        # Reference; https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html).
        f.allow(function, ["dynamodb:ListStreams"], ["*"])
        f.allow_producing(function)
        # Only outbox inserts reach the relay; where it is a fallback, also the deletes that show a function
        # published its events (not TTL's, which name DynamoDB's service principal as their userIdentity:
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html).
        filters = [lambda_.FilterCriteria.filter({
            "eventName": lambda_.FilterRule.is_equal("INSERT"),
            "dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.begins_with(OUTBOX_PREFIX)}}},
        })]
        if fallback:
            f.allow(function, ["dynamodb:BatchGetItem"], [f.data.table.table_arn])
            filters.append(lambda_.FilterCriteria.filter({
                "eventName": lambda_.FilterRule.is_equal("REMOVE"),
                "dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.begins_with(OUTBOX_PREFIX)}}},
                "userIdentity": {"type": lambda_.FilterRule.not_exists()},
            }))
        mapping = lambda_.EventSourceMapping(
            self.scope, "RelayMapping",
            target=function,
            event_source_arn=stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=100,
            # A relay whose events a critical-path handler waits for publishes each commit at once (Lambda polls
            # the stream four times a second); the others wait up to a second to fill a batch.
            max_batching_window=cdk.Duration.seconds(0 if relays_critical_path(self.spec) else 1),
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            # Keep retrying through a broker outage (the shard waits, so its order is kept); give a batch
            # up only after 12 h, well inside the stream's 24 h. The given-up batch's stream records (the
            # outbox items) are kept in S3, from which `ops dlq redrive --handler <service>.relay`
            # republishes them (docs/runbooks/dlq.md).
            retry_attempts=10_000,
            max_record_age=cdk.Duration.hours(12),
            on_failure=BucketDestination(f.data.failed_batches),
            filters=filters,
        )
        f.give_up_into_failed_batches(mapping, function, dlq)

    def schedule(self, schedule: catalog.ScheduleSpec) -> None:
        f = self.functions
        name = names.construct(schedule.entry)
        function = f.create(name, f.entry_point(names.SCHEDULES_MODULE, schedule.entry), kind="schedule",
                            environment=f.environment(), timeout=cdk.Duration.minutes(5))
        f.allow_table(function)
        # EventBridge invokes asynchronously: after Lambda's own retries a failed run would be dropped.
        # It goes to a dead-letter queue instead (https://docs.aws.amazon.com/lambda/latest/dg/
        # invocation-async-retain-records.html), which is alarmed like the others.
        dlq = f.dead_letter_queue(name, schedule.name)
        f.allow_dead_letters(function, dlq)
        function.configure_async_invoke(on_failure=AsyncFailureQueue(dlq),  # type: ignore[arg-type]
                                        retry_attempts=2)
        events.Rule(self.scope, f"{name}Every{schedule.every_minutes}m",
                    schedule=events.Schedule.rate(cdk.Duration.minutes(schedule.every_minutes)),
                    targets=[targets.LambdaFunction(function, retry_attempts=2)])
