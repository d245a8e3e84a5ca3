"""The capacity model behind docs/capacity.md: partitions each topic needs at a given order rate.

    python -m tools.capacity [ORDERS_PER_SECOND]

A mapping runs one invocation per partition at a time, and a batch is worked through record by record
(up to HandlerSpec.concurrency records of different keys side by side). A handler keeps up when

    partitions >= records/s x time per record / (concurrency x utilisation)

Time per record is the consumer runtime (bench/results.md section 3) plus the AWS calls the handler makes
per event (section 2) at the per-call latencies below (assumed: AWS publishes no such figures), plus the
e-mail send and the payment provider where the handler waits on them.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopstream import catalog
from stacks.config import load as load_config

UTILISATION = 0.7  # headroom: a partition busy 70% of the time at the design rate
RUNTIME_MS = 0.065  # consumer runtime per record (bench section 3: 62.9 µs)
DYNAMODB_MS = 6.0  # one DynamoDB call from Lambda in the same region (assumed p50; transactions included)
S3_PUT_MS = 7.0  # one S3 PutObject (assumed)
SES_MS = 30.0  # one SES SendEmail (assumed)
COGNITO_MS = 30.0  # one Cognito AdminDeleteUser (assumed)
PROVIDER_MS = 300.0  # a card network's charge (assumed)
# The trail archives a batch per partition and day in one object (audit.logic.archive_batch): at the design
# rate a partition's batch holds tens of records; taken at 20 (one PUT per 20 records).
ARCHIVE_PUTS_PER_RECORD = 1 / 20

# Records per order by event type: every order from a cart (created, filled, checked out); 80% paid,
# shipped and delivered; 20% declined (released, cancelled). Audit: every mutating API call (cart
# create, cart items, order, dispatch, deliver). Notifications: order, payment and shipping notices.
RECORDS_PER_ORDER = {
    "CartCreated": 1.0, "CartUpdated": 2.0,
    "OrderCreated": 1.0, "OrderConfirmed": 0.8, "OrderCancelled": 0.2, "OrderShipped": 0.8,
    "InventoryReserved": 1.0, "InventoryReleased": 0.2,
    "PaymentInitiated": 1.0, "PaymentProcessed": 0.8, "PaymentFailed": 0.2,
    "ShippingCreated": 0.8, "ShippingDispatched": 0.8, "ShippingDelivered": 0.8,
    "NotificationSent": 3.6, "AuditRecorded": 4.6,
}
# AWS calls per consumed event (DynamoDB, S3), bench/results.md section 2 (2026-11-27); handlers the bench
# does not exercise are taken at 3 DynamoDB calls.
CALLS_PER_EVENT = {
    "audit.trail-*": (1.0, ARCHIVE_PUTS_PER_RECORD), "audit.analytics-orders": (2.0, 0.0),
    "audit.analytics-payments": (1.0, 0.0),
    "cart.order-checkout": (1.0, 0.0), "catalog.stock-availability": (3.0, 0.0),
    "inventory.order-reservations": (2.8, 0.0), "inventory.payment-outcomes": (2.5, 0.0),
    "notification.order-notices": (2.0, 0.0), "notification.payment-notices": (2.0, 0.0),
    "order.inventory-outcomes": (3.31, 0.0), "order.payment-outcomes": (2.0, 0.0),
    "order.shipping-outcomes": (4.0, 0.0), "payment.inventory-outcomes": (4.96, 0.0),
    "payment.order-payments": (1.8, 0.0), "shipping.order-fulfilment": (3.6, 0.0),
    "user.identity-erasure": (0.0, 0.0),  # no table, no idempotency record: one Cognito call (COGNITO_MS)
}
WAITS_ON_PROVIDER = {"payment.inventory-outcomes"}


@dataclass(frozen=True)
class HandlerLoad:
    ref: str  # service.handler
    topic: str
    records_per_second: float
    ms_per_record: float
    concurrency: int

    @property
    def busy_partitions(self) -> float:
        return self.records_per_second * self.ms_per_record / 1000 / self.concurrency

    @property
    def partitions_needed(self) -> int:
        return math.ceil(self.busy_partitions / UTILISATION)


def ms_per_record(ref: str, handler: catalog.HandlerSpec) -> float:
    key = "audit.trail-*" if ref.startswith("audit.trail-") else ref
    dynamodb, s3 = CALLS_PER_EVENT.get(key, (3.0, 0.0))
    ms = RUNTIME_MS + dynamodb * DYNAMODB_MS + s3 * S3_PUT_MS
    if "email" in handler.needs:
        ms += SES_MS
    if "identity" in handler.needs:
        ms += COGNITO_MS
    if ref in WAITS_ON_PROVIDER:
        ms += PROVIDER_MS
    return ms


def loads(orders_per_second: float) -> list[HandlerLoad]:
    out = []
    for spec in catalog.SERVICES:
        for handler in spec.handlers:
            ref = f"{spec.name}.{handler.name}"
            rate = sum(RECORDS_PER_ORDER.get(name, 0.0) for name in handler.event_types) * orders_per_second
            out.append(HandlerLoad(ref, handler.topic, rate, ms_per_record(ref, handler), handler.concurrency))
    return out


def records_per_second(topic_name: str, orders_per_second: float) -> float:
    return sum(RECORDS_PER_ORDER.get(e.name, 0.0) for e in catalog.EVENTS if e.topic == topic_name) * orders_per_second


def partitions_needed(orders_per_second: float) -> dict[str, tuple[int, HandlerLoad]]:
    """Per topic: the partitions its busiest handler needs, and that handler."""
    out: dict[str, tuple[int, HandlerLoad]] = {}
    for load in loads(orders_per_second):
        if load.topic not in out or load.partitions_needed > out[load.topic][0]:
            out[load.topic] = (load.partitions_needed, load)
    return out


def sustained_orders_per_second(partitions: dict[str, int]) -> list[tuple[float, HandlerLoad]]:
    """Orders/s at which each handler reaches the utilisation with the given partitions, lowest first."""
    per_order = {load.ref: load for load in loads(1.0)}
    limits = []
    for load in per_order.values():
        if load.busy_partitions:
            limits.append((partitions[load.topic] * UTILISATION / load.busy_partitions, load))
    return sorted(limits, key=lambda pair: pair[0])


# --- Express brokers ---------------------------------------------------------------------------------------
# Recommended maximum throughput per Express broker, (ingress, egress) in MBps: "If your throughput exceeds the
# recommended limits, you may experience degraded performance" (and beyond the per-broker quota MSK throttles).
# https://docs.aws.amazon.com/msk/latest/developerguide/bestpractices-express.html
EXPRESS_THROUGHPUT_MBPS = {"express.m7g.large": (15.6, 31.2), "express.m7g.xlarge": (31.2, 62.5),
                           "express.m7g.2xlarge": (62.5, 125.0), "express.m7g.4xlarge": (124.9, 249.8),
                           "express.m7g.8xlarge": (250.0, 500.0), "express.m7g.12xlarge": (375.0, 750.0),
                           "express.m7g.16xlarge": (500.0, 1000.0)}


def client_throughput_mbps(orders_per_second: float) -> tuple[float, float]:
    """(ingress, egress) MB/s of the clients: what the relays write, and what the mappings read (each mapping reads
    every record of its topic; the replicas' traffic is not client traffic)."""
    ingress = sum(records_per_second(t.name, orders_per_second) for t in catalog.TOPICS) * RECORD_KB / 1000
    egress = sum(records_per_second(h.topic, orders_per_second) for spec in catalog.SERVICES
                 for h in spec.handlers) * RECORD_KB / 1000
    return ingress, egress


def express_brokers_needed(size: str, orders_per_second: float, partitions: dict[str, int]) -> dict[str, int]:
    """Express brokers of ``size`` each dimension needs (ingress, egress, partition replicas at replication 3), and
    the cluster's count: the largest, in whole multiples of the 3 Availability Zones Express runs in."""
    from stacks.config import EXPRESS_AVAILABILITY_ZONES, EXPRESS_REPLICATION_FACTOR, MSK_PARTITIONS_PER_EXPRESS_BROKER

    ingress, egress = client_throughput_mbps(orders_per_second)
    per_in, per_out = EXPRESS_THROUGHPUT_MBPS[size]
    replicas = sum(partitions.values()) * EXPRESS_REPLICATION_FACTOR
    needed = {"ingress": math.ceil(ingress / per_in), "egress": math.ceil(egress / per_out),
              "partitions": math.ceil(replicas / MSK_PARTITIONS_PER_EXPRESS_BROKER[size])}
    zones = EXPRESS_AVAILABILITY_ZONES
    needed["brokers"] = max(zones, math.ceil(max(needed.values()) / zones) * zones)
    return needed


# --- latency: POST /orders -> CONFIRMED ------------------------------------------------------------------
# Per hop (p50, p99) in ms. The ESM figure is Lambda's documented "consistent end-to-end latencies of less
# than 100 milliseconds" in provisioned mode with window 0 (with-kafka-low-latency.html), taken as 30 / 100.
# A DynamoDB stream is polled four times a second (with-ddb.html): 125 ms on average, 250 at most, plus the
# record's propagation (assumed 25 / 150); the relay's produce with acks=all (assumed 8 / 40).
ESM_MS = (30.0, 100.0)
STREAM_MS = (150.0, 400.0)
PRODUCE_MS = (8.0, 40.0)
API_MS = (10.0, 30.0)  # API Gateway HTTP API overhead (assumed)
DYNAMODB_P99_MS = 25.0  # one call, p99 (assumed)
PROVIDER_P99_MS = 1000.0


def _handler_ms(ref: str) -> tuple[float, float]:
    dynamodb, _ = CALLS_PER_EVENT.get(ref, (3.0, 0.0))
    p50 = RUNTIME_MS + dynamodb * DYNAMODB_MS + (PROVIDER_MS if ref in WAITS_ON_PROVIDER else 0.0)
    p99 = RUNTIME_MS + dynamodb * DYNAMODB_P99_MS + (PROVIDER_P99_MS if ref in WAITS_ON_PROVIDER else 0.0)
    return p50, p99


def saga_hops() -> list[tuple[str, float, float]]:
    """(hop, p50, p99) from POST /orders to the order CONFIRMED, the critical path of the catalog."""
    relay = (STREAM_MS[0] + PRODUCE_MS[0], STREAM_MS[1] + PRODUCE_MS[1])
    hops = [("POST /orders (API Gateway + order function, 3 DynamoDB calls)",
             API_MS[0] + 3 * DYNAMODB_MS, API_MS[1] + 3 * DYNAMODB_P99_MS),
            ("order relay: DynamoDB stream -> order-events", *relay)]
    for ref, after in (("inventory.order-reservations", "inventory relay -> inventory-events"),
                       ("payment.inventory-outcomes", "payment relay -> payment-events"),
                       ("order.payment-outcomes", None)):
        p50, p99 = _handler_ms(ref)
        hops.append((f"ESM (window 0) + {ref}", ESM_MS[0] + p50, ESM_MS[1] + p99))
        if after:
            hops.append((after, *relay))
    return hops


# --- cost per month ----------------------------------------------------------------------------------------
# List prices in USD (us-east-1; eu-west-1 is 5-10% higher). The AWS pricing pages render their figures in
# the browser and could not be read from the build machine on 2026-11-29: the figures below are the
# published rates as known to us on that date, to be checked in the AWS Pricing Calculator before a deploy.
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
MSK_BROKER_HOUR = {"kafka.t3.small": 0.0456, "kafka.m7g.large": 0.204, "kafka.m7g.xlarge": 0.408}
MSK_STORAGE_GB_MONTH = 0.10
MSK_TIERED_GB_MONTH = 0.06
EPU_HOUR = 0.185  # provisioned mode, per event poller unit (assumed; see above)
POLLERS_PER_EPU = 10  # pollers sharing one EPU within a poller group (assumed)
LAMBDA_GB_SECOND = 0.0000133334  # arm64
LAMBDA_REQUEST = 0.20 / 1e6
LAMBDA_MEMORY_GB = 0.5
DYNAMODB_WRU = 0.625 / 1e6  # on demand
DYNAMODB_RRU = 0.125 / 1e6
DYNAMODB_GB_MONTH = 0.25
S3_PUT = 0.005 / 1000
S3_GB_MONTH = 0.023
ENDPOINT_AZ_HOUR = 0.01  # one interface endpoint per AZ: X-Ray, the relays' traces (S3 is a free gateway endpoint)
CLOUDWATCH_LOG_GB = 0.50
RECORD_KB = 1.0
LOG_KB_PER_RECORD = 0.3  # one structured line per batch and per failure; Powertools metrics (EMF) per batch
RECORDS_PER_INVOCATION = 2.0  # window 0 at the design rate: a partition's batch holds a record or two
WRU_PER_EVENT = 5.0  # one transaction of ~2.5 items (state, outbox) at 2 WRU each
TRAIL_WRU = 2.0  # the trail's one conditional put, in a transaction of one item


# CloudWatch metrics: MSK's enhanced monitoring above DEFAULT and the Kafka mappings' metrics are billed per metric
# and month (DEFAULT-level metrics are free; "Pricing for other metrics is described in the Amazon CloudWatch pricing
# page": https://docs.aws.amazon.com/msk/latest/developerguide/metrics-details.html). Counted from MSK's tables:
# PER_BROKER adds 47 metrics per broker, PER_TOPIC_PER_BROKER 3 per topic and broker, PER_TOPIC_PER_PARTITION the
# consumer lag of every partition each consumer group reads (EstimatedTimeLag, OffsetLag; on Express brokers also
# RollingEstimatedTimeLag: metrics-details-express.html). Each level includes the ones below it. The per-broker
# count is the Standard table's; Express's differs a little, the partition level dominates either way.
MSK_METRICS_PER_BROKER = 47
MSK_METRICS_PER_TOPIC_AND_BROKER = 3
MSK_LAG_METRICS_PER_PARTITION = {False: 2, True: 3}  # by express brokers
MONITORING_LEVELS = ("DEFAULT", "PER_BROKER", "PER_TOPIC_PER_BROKER", "PER_TOPIC_PER_PARTITION")
# A Kafka mapping's metrics with EventCount and KafkaMetrics: 7 event counts, MaxOffsetLag and SumOffsetLag; its
# ErrorCount metrics are emitted only when errors happen (monitoring-metrics-types.html). Lambda's function metrics
# are free; whether the mapping metrics are billed the pages read do not say: counted as billed (an upper bound).
MAPPING_METRICS = 9
# CloudWatch metric tiers per month (us-east-1, as known on 2026-12-04; https://aws.amazon.com/cloudwatch/pricing/):
# first 10,000 at $0.30, next 240,000 at $0.10, next 750,000 at $0.05, beyond at $0.02. A metric is billed by the
# hour it is emitted; the tiers are the account's (environments sharing one account share them).
CLOUDWATCH_METRIC_TIERS = ((10_000, 0.30), (240_000, 0.10), (750_000, 0.05), (float("inf"), 0.02))
CLOUDWATCH_METRICS_ITEM = "CloudWatch metrics (MSK enhanced monitoring, mapping metrics)"


def msk_billed_metrics(level: str, *, brokers: int, topics: int, consumed_partitions: int, express: bool) -> int:
    """CloudWatch metrics an MSK cluster bills at a monitoring level. ``consumed_partitions``: the partitions every
    consumer group reads, summed over the groups (one group per mapping, each reading one topic)."""
    rank = MONITORING_LEVELS.index(level)
    metrics = 0
    if rank >= 1:
        metrics += MSK_METRICS_PER_BROKER * brokers
    if rank >= 2:
        metrics += MSK_METRICS_PER_TOPIC_AND_BROKER * topics * brokers
    if rank >= 3:
        metrics += MSK_LAG_METRICS_PER_PARTITION[express] * consumed_partitions
    return metrics


def cloudwatch_metrics(config: Any) -> int:
    """Billed CloudWatch metrics of one environment: its cluster's monitoring level and every Kafka mapping's."""
    consumed = sum(config.partition_count(h.topic) for spec in catalog.SERVICES for h in spec.handlers)
    mappings = sum(len(spec.handlers) for spec in catalog.SERVICES)
    msk = msk_billed_metrics(config.msk_monitoring_level, brokers=config.broker_count, topics=len(catalog.TOPICS),
                             consumed_partitions=consumed, express=config.express_brokers)
    return msk + mappings * MAPPING_METRICS


def cloudwatch_metrics_cost(metrics: int) -> float:
    cost, below = 0.0, 0.0
    for size, rate in CLOUDWATCH_METRIC_TIERS:
        in_tier = max(0, min(metrics - below, size))
        cost += in_tier * rate
        below += size
    return cost


def _epus(pollers: int) -> int:
    return math.ceil(pollers / POLLERS_PER_EPU)


def monthly_cost(config: Any, orders_per_second: float) -> dict[str, float]:
    """USD per month for one environment (a stacks.config.EnvironmentConfig) at a steady order rate."""
    out: dict[str, float] = {}
    if config.broker_instance_type not in MSK_BROKER_HOUR:
        raise ValueError(f"no price for {config.broker_instance_type} in MSK_BROKER_HOUR (tools/capacity.py): add it "
                         "from the MSK pricing page (Express brokers also bill storage used and data written)")
    out["MSK brokers"] = config.broker_count * MSK_BROKER_HOUR[config.broker_instance_type] * HOURS_PER_MONTH
    out["MSK storage"] = config.broker_count * (config.broker_volume_gi_b or 0) * MSK_STORAGE_GB_MONTH
    ingest_kb_s = sum(records_per_second(t.name, orders_per_second) for t in catalog.TOPICS) * RECORD_KB
    # tiered storage holds one copy of what outlives the brokers' local retention: a month of it at this rate
    out["MSK tiered storage (a month's data)"] = ingest_kb_s * SECONDS_PER_MONTH / 1e6 * MSK_TIERED_GB_MONTH
    all_loads = loads(orders_per_second)
    pollers = 0
    for _group, handlers in config.poller_groups().items():
        minimum = sum(config.pollers(h)[0] for h in handlers)
        by_ref = {ld.ref.split(".", 1)[1]: ld for ld in all_loads if ld.topic in {h.topic for h in handlers}}
        busy = sum(math.ceil(by_ref[h.name].busy_partitions / 5) for h in handlers if h.name in by_ref)
        pollers += _epus(max(minimum, busy))
    out["event pollers (EPUs)"] = pollers * EPU_HOUR * HOURS_PER_MONTH
    busy_seconds = sum(ld.records_per_second * ld.ms_per_record / 1000 for ld in all_loads)
    consumed = sum(ld.records_per_second for ld in all_loads)
    produced = ingest_kb_s / RECORD_KB
    api = orders_per_second * 4  # cart create, items x2, order
    lambda_seconds = busy_seconds + produced * 0.010 + api * 0.030  # relays ~10 ms/record, API ~30 ms
    out["Lambda"] = (lambda_seconds * LAMBDA_MEMORY_GB * LAMBDA_GB_SECOND * SECONDS_PER_MONTH
                     + (consumed / RECORDS_PER_INVOCATION + produced / 10 + api) * LAMBDA_REQUEST * SECONDS_PER_MONTH)
    reads = sum(ld.records_per_second * max(0.0, CALLS_PER_EVENT.get(ld.ref, (3.0, 0.0))[0] - 1) for ld in all_loads)
    writes = sum(ld.records_per_second * (TRAIL_WRU if ld.ref.startswith("audit.trail-") else WRU_PER_EVENT)
                 for ld in all_loads)
    out["DynamoDB requests"] = (writes * DYNAMODB_WRU + reads * DYNAMODB_RRU) * SECONDS_PER_MONTH
    trail_kb_s = sum(ld.records_per_second for ld in all_loads if ld.ref.startswith("audit.trail-")) * RECORD_KB
    out["DynamoDB storage (the trail's month)"] = trail_kb_s * SECONDS_PER_MONTH / 1e6 * DYNAMODB_GB_MONTH
    out["S3 archive PUTs"] = trail_kb_s / RECORD_KB * ARCHIVE_PUTS_PER_RECORD * S3_PUT * SECONDS_PER_MONTH
    out["S3 archive storage (a month's data)"] = trail_kb_s * SECONDS_PER_MONTH / 1e6 * S3_GB_MONTH
    out["VPC endpoints"] = len(config.availability_zones) * ENDPOINT_AZ_HOUR * HOURS_PER_MONTH
    out["CloudWatch Logs"] = ((consumed / RECORDS_PER_INVOCATION + api) * LOG_KB_PER_RECORD * SECONDS_PER_MONTH
                              / 1e6 * CLOUDWATCH_LOG_GB)
    out[CLOUDWATCH_METRICS_ITEM] = cloudwatch_metrics_cost(cloudwatch_metrics(config))
    return out


def main(argv: list[str]) -> None:
    rate = float(argv[0]) if argv else 2000.0
    print(f"| topic | records/s at {rate:g} orders/s | partitions needed | busiest handler | ms/record |")
    print("|---|---|---|---|---|")
    for topic_name, (needed, load) in partitions_needed(rate).items():
        print(f"| {topic_name} | {records_per_second(topic_name, rate):,.0f} | {needed} | {load.ref} "
              f"| {load.ms_per_record:.0f} (concurrency {load.concurrency}) |")
    concurrent = sum(load.busy_partitions for load in loads(rate))
    print(f"\nconcurrent invocations at {rate:g} orders/s: {concurrent:,.0f}")
    print(f"first bottleneck with prod's partitions: {first_bottleneck()}")

    hops = saga_hops()
    print("\n| hop | p50 ms | p99 ms |\n|---|---|---|")
    for name, p50, p99 in hops:
        print(f"| {name} | {p50:.0f} | {p99:.0f} |")
    print(f"| **POST /orders -> CONFIRMED** | **{sum(h[1] for h in hops):.0f}** "
          f"| **{sum(h[2] for h in hops):.0f}** (sum of p99s: an upper bound) |")

    prod_partitions = {t.name: load_config(_environments(), "prod").partition_count(t.name) for t in catalog.TOPICS}
    ingress, egress = client_throughput_mbps(rate)
    print(f"\nclients at {rate:g} orders/s: {ingress:,.1f} MB/s in, {egress:,.1f} MB/s out; prod's partitions")
    print("| Express size | brokers for ingress | for egress | for partition replicas | cluster (3 AZs) |")
    print("|---|---|---|---|---|")
    for size in EXPRESS_THROUGHPUT_MBPS:
        n = express_brokers_needed(size, rate, prod_partitions)
        print(f"| {size} | {n['ingress']} | {n['egress']} | {n['partitions']} | {n['brokers']} |")

    environments = _environments()
    columns = [("dev", 0.0), ("dev", 100.0), ("staging", 0.0), ("staging", 100.0), ("prod", 0.0), ("prod", 100.0),
               ("prod", rate)]
    costs = [monthly_cost(load_config(environments, env), r) for env, r in columns]
    print("\n| USD / month | " + " | ".join(f"{env} at {r:g}/s" if r else f"{env} idle" for env, r in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for item in costs[0]:
        print(f"| {item} | " + " | ".join(f"{c[item]:,.0f}" for c in costs) + " |")
    print("| **total** | " + " | ".join(f"**{sum(c.values()):,.0f}**" for c in costs) + " |")
    print("\nbilled CloudWatch metrics: " + ", ".join(
        f"{env} {cloudwatch_metrics(load_config(environments, env)):,}" for env in ("dev", "staging", "prod")))
    orders_per_month = rate * SECONDS_PER_MONTH
    per_thousand = sum(costs[-1].values()) / orders_per_month * 1000
    print(f"\nper 1,000 orders at {rate:g} orders/s (prod): USD {per_thousand:.3f}")


def _environments() -> dict[str, Any]:
    return dict(json.loads((Path(__file__).resolve().parents[1] / "cdk.json").read_text())["context"]["environments"])


def first_bottleneck() -> str:
    prod = load_config(_environments(), "prod")
    limit, handler = sustained_orders_per_second({t.name: prod.partition_count(t.name) for t in catalog.TOPICS})[0]
    return f"{handler.ref} on {handler.topic} at {limit:,.0f} orders/s"


if __name__ == "__main__":
    main(sys.argv[1:])
