"""A service's alarms and dashboard: every alarm made one way, every one paging the alarm topic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from shopstream import catalog, names

# A mapping's records behind (on its topic, all partitions together) before it pages, held for 5 minutes.
OFFSET_LAG_ALARM = 10_000
# What a Kafka mapping reports with its metrics config (stacks/service/consumers.py), by event source mapping UUID.
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html#event-source-mapping-metrics
MAPPING_EVENT_COUNTS = ("PolledEventCount", "InvokedEventCount", "CommittedEventCount", "FailedInvokeEventCount",
                        "OnFailureDestinationDeliveredEventCount", "DroppedEventCount")
MAPPING_LAG = ("MaxOffsetLag", "SumOffsetLag")


class Monitoring:
    def __init__(self, scope: Construct, *, service: str, alarm_topic: sns.ITopic):
        self.scope, self.service, self.alarm_topic = scope, service, alarm_topic
        self.mappings: list[tuple[str, catalog.HandlerSpec, lambda_.EventSourceMapping]] = []
        self.on_demand: list[tuple[str, catalog.HandlerSpec, lambda_.Function]] = []  # mappings without metrics

    def mapping_behind_or_dropping(self, name: str, handler: catalog.HandlerSpec, mapping: lambda_.EventSourceMapping,
                                   function: lambda_.Function) -> None:
        """A Kafka mapping's alarms, on its own metrics (by its UUID):
        - falling behind: its offset lag over all partitions (SumOffsetLag), or the function's topic-level OffsetLag
          should the mapping's metric be missing;
        - dropping records: DroppedEventCount counts the records given up that did not reach the on-failure
          destination (its delivery failed): they are in no failed-batch bucket, only still on the topic;
        - not reading: polling and commit errors, which Lambda emits only when they happen."""
        self.mappings.append((name, handler, mapping))
        self.alarm(f"{name}OffsetLag",
                   cloudwatch.MathExpression(
                       expression="MAX([topicLag, mappingLag])", label="records behind",
                       using_metrics={"topicLag": _lambda_metric(function, "OffsetLag", minutes=1),
                                      "mappingLag": _mapping_metric(mapping, "SumOffsetLag", "Maximum")},
                       period=cdk.Duration.minutes(1)),
                   above=OFFSET_LAG_ALARM, evaluation_periods=5,
                   description=f"{self.service}/{handler.name} is falling behind on {handler.topic}")
        self.alarm(f"{name}DroppedRecords", _mapping_metric(mapping, "DroppedEventCount", "Sum"), above=0,
                   description=f"{self.service}/{handler.name} gave records of {handler.topic} up without keeping "
                               "them (the failed-batch bucket refused them): replay them from the topic "
                               "(docs/runbooks/replay.md)")
        self.alarm(f"{name}PollerErrors",
                   cloudwatch.MathExpression(
                       expression="FILL(polling, 0) + FILL(commits, 0)", label="polling and commit errors",
                       using_metrics={"polling": _mapping_metric(mapping, "PollingErrorCount", "Sum", minutes=5),
                                      "commits": _mapping_metric(mapping, "CommitErrorCount", "Sum", minutes=5)},
                       period=cdk.Duration.minutes(5)),
                   above=0, evaluation_periods=3,
                   description=f"{self.service}/{handler.name}: its pollers fail to read {handler.topic} or to commit "
                               "offsets (the mapping's system logs are in the function's log group)")

    def mapping_behind(self, name: str, handler: catalog.HandlerSpec, function: lambda_.Function) -> None:
        """An on-demand Kafka mapping's alarm: it has no metrics of its own (their MetricsConfig is not set there), so
        it pages on its function's OffsetLag (Lambda's, for Kafka mappings, free). A batch failing again and again
        shows there too: on demand it is retried until its records leave the topic, never given up."""
        self.on_demand.append((name, handler, function))
        self.alarm(f"{name}OffsetLag", _lambda_metric(function, "OffsetLag", minutes=1), above=OFFSET_LAG_ALARM,
                   evaluation_periods=5, description=f"{self.service}/{handler.name} is falling behind on "
                                                     f"{handler.topic} (or a batch keeps failing: see its logs)")

    def alarm(self, construct_id: str, metric: cloudwatch.IMetric, *, above: float, description: str,
              evaluation_periods: int = 1) -> cloudwatch.Alarm:
        """Pages when ``metric`` is above ``above`` for ``evaluation_periods``; no data is no alarm."""
        alarm = cloudwatch.Alarm(
            self.scope, construct_id, metric=metric, threshold=above, evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING, alarm_description=description)
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))
        return alarm

    def table_throttled(self, table: dynamodb.ITable, indexes: list[str], *, construct_id: str = "TableThrottled",
                        what: str = "its table or index", setting: str = "dynamodb.tables") -> None:
        """A provisioned table (or its index) refused requests over its capacity: bursts faster than auto scaling
        follows (minutes), or a maximum too low. Consumers retry throttled calls (transient), so nothing is lost,
        but the saga slows down. Read and write throttle events of the table and of each index, per minute.
        ``what`` and ``setting`` name the table and where cdk.json sizes it (the platform's key store)."""
        metrics: dict[str, cloudwatch.IMetric] = {}
        for kind in ("Read", "Write"):
            metrics[f"table{kind}"] = _table_metric(table, f"{kind}ThrottleEvents")
            for number, index in enumerate(indexes):
                metrics[f"index{number}{kind}"] = _table_metric(table, f"{kind}ThrottleEvents", index=index)
        self.alarm(construct_id,
                   cloudwatch.MathExpression(expression=" + ".join(f"FILL({m}, 0)" for m in metrics),
                                             label="throttled requests", using_metrics=metrics,
                                             period=cdk.Duration.minutes(1)),
                   above=0, evaluation_periods=5,
                   description=f"{self.service}: {what} throttles requests beyond its provisioned capacity for 5 "
                               f"minutes (raise the maximum in cdk.json {setting}, or check the auto scaling "
                               "activity: docs/decisions.md, 2026-12-05)")

    def dead_letters_waiting(self, name: str, queue: sqs.Queue) -> None:
        self.alarm(f"{name}DlqNotEmpty",
                   queue.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(1),
                                                                       statistic="Maximum"),
                   above=0, description=f"{self.service}/{name}: records are waiting in the dead-letter queue "
                                        "(see docs/runbooks/dlq.md)")

    def relay_behind(self, function: lambda_.Function) -> None:
        """The relay is falling behind (a broker outage, a failing publish): page long before the batch
        is given up (12 h), after which its batch waits in the failed-batch bucket for a redrive."""
        self.alarm("RelayIteratorAge", _lambda_metric(function, "IteratorAge", minutes=5), above=15 * 60 * 1000,
                   evaluation_periods=3, description=f"{self.service} outbox relay is more than 15 minutes "
                                                     "behind (see docs/runbooks/dlq.md, relay failures)")

    def dashboard(self, env_prefix: str, functions: dict[str, lambda_.Function],
                  handlers: tuple[catalog.HandlerSpec, ...]) -> None:
        """Errors of every function and offset lag of every consumer, alarmed and on one dashboard."""
        dashboard = cloudwatch.Dashboard(self.scope, "Dashboard",
                                         dashboard_name=names.service_stack(env_prefix, self.service))
        for name, function in functions.items():
            errors = function.metric_errors(period=cdk.Duration.minutes(5))
            self.alarm(f"{name}Errors", errors, above=0, description=f"{self.service}/{name} function errors")
            dashboard.add_widgets(cloudwatch.GraphWidget(
                title=f"{name}", width=12,
                left=[function.metric_invocations(), errors, function.metric_throttles()],
                right=[function.metric_duration(statistic="p99")]))
        for name, handler, mapping in self.mappings:
            dashboard.add_widgets(cloudwatch.GraphWidget(
                title=f"{name} mapping ({handler.topic})", width=12,
                left=[_mapping_metric(mapping, m, "Sum") for m in MAPPING_EVENT_COUNTS],
                right=[_mapping_metric(mapping, m, "Maximum") for m in MAPPING_LAG]))
        for name, handler, function in self.on_demand:
            dashboard.add_widgets(cloudwatch.GraphWidget(
                title=f"{name} mapping ({handler.topic}, on demand)", width=12,
                left=[_lambda_metric(function, "OffsetLag", minutes=1)]))


def _mapping_metric(mapping: lambda_.EventSourceMapping, metric_name: str, statistic: str, *,
                    minutes: int = 1) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace="AWS/Lambda", metric_name=metric_name,
                             dimensions_map={"EventSourceMappingUUID": mapping.event_source_mapping_id},
                             statistic=statistic, period=cdk.Duration.minutes(minutes), label=metric_name)


def _table_metric(table: dynamodb.ITable, metric_name: str, *, index: str | None = None) -> cloudwatch.Metric:
    dimensions = {"TableName": table.table_name, **({"GlobalSecondaryIndexName": index} if index else {})}
    return cloudwatch.Metric(namespace="AWS/DynamoDB", metric_name=metric_name, dimensions_map=dimensions,
                             statistic="Sum", period=cdk.Duration.minutes(1), label=metric_name)


def _lambda_metric(function: lambda_.Function, metric_name: str, *, minutes: int) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace="AWS/Lambda", metric_name=metric_name,
                             dimensions_map={"FunctionName": function.function_name},
                             statistic="Maximum", period=cdk.Duration.minutes(minutes))
