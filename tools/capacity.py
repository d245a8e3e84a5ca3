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
from stacks.config import INVOCATIONS_PER_POLLER
from stacks.config import load as load_config

UTILISATION = 0.7  # headroom: a partition busy 70% of the time at the design rate
RUNTIME_MS = 0.065  # consumer runtime per record (bench section 3: 62.9 µs)
DYNAMODB_MS = 6.0  # one DynamoDB call from Lambda in the same region (assumed p50; transactions included)
S3_PUT_MS = 7.0  # one S3 PutObject (assumed)
SES_MS = 30.0  # one SES SendEmail (assumed)
COGNITO_MS = 30.0  # one Cognito AdminDeleteUser (assumed)
PROVIDER_MS = 300.0  # a card network's charge (assumed)
# The trail archives a batch per partition and day in one object (audit.logic.archive_batch), after the batch:
# for the time a record holds its partition taken at one PUT per 20 records (assumed; at the design rate a
# trail batch holds ~100, so this errs on the slow side). The cost counts one PUT per trail invocation.
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
# AWS calls per consumed event: (DynamoDB calls, S3 PUTs), and the DynamoDB reads among those calls (GetItem,
# BatchGetItem, Query: one read unit each, assumed items <= 4 KB), from bench/results.md section 2 (`make bench`
# of 2026-11-29T17:41, 100 orders through every service against moto; its top operations give the reads).
# cart.order-checkout: the bench checks out one order in four from a cart (0.25 GetItem + 0.25 TransactWriteItems
# per OrderCreated); this model's orders all come from carts, so 1 + 1. Every trail handler is audit.trail-*
# (1 TransactWriteItems of one item, no read). notification.user-notices also opens the address with KMS (0.62
# kms.Decrypt per event, not timed: its topic has no load here). A handler the bench does not exercise: DEFAULT_*.
CALLS_PER_EVENT = {
    "audit.trail-*": (1.0, ARCHIVE_PUTS_PER_RECORD), "audit.analytics-orders": (2.3, 0.0),
    "audit.analytics-payments": (1.56, 0.0), "audit.analytics-inventory": (1.78, 0.0),
    "cart.order-checkout": (2.0, 0.0), "cart.product-sync": (3.0, 0.0), "cart.user-sync": (3.0, 0.0),
    "catalog.stock-availability": (1.0, 0.0),
    "inventory.order-reservations": (2.67, 0.0), "inventory.payment-outcomes": (3.0, 0.0),
    "inventory.product-sync": (1.33, 0.0),
    "notification.user-notices": (2.88, 0.0), "notification.order-notices": (3.0, 0.0),
    "notification.payment-notices": (3.0, 0.0), "notification.shipping-notices": (3.0, 0.0),
    "notification.cart-notices": (3.0, 0.0), "notification.alert-notices": (2.0, 0.0),
    "order.inventory-outcomes": (2.0, 0.0), "order.payment-outcomes": (2.0, 0.0),
    "order.shipping-outcomes": (2.0, 0.0), "order.user-replica": (1.0, 0.0), "order.product-replica": (1.0, 0.0),
    "payment.inventory-outcomes": (2.0, 0.0), "payment.order-payments": (1.17, 0.0),
    "shipping.order-fulfilment": (2.0, 0.0),
    "user.identity-erasure": (0.0, 0.0),  # no table, no idempotency record: one Cognito call (COGNITO_MS)
}
READS_PER_EVENT = {
    "audit.trail-*": 0.0, "audit.analytics-orders": 0.0, "audit.analytics-payments": 0.2,
    "audit.analytics-inventory": 0.0, "cart.order-checkout": 1.0, "cart.product-sync": 2.0, "cart.user-sync": 2.0,
    "catalog.stock-availability": 0.0, "inventory.order-reservations": 1.83, "inventory.payment-outcomes": 2.0,
    "inventory.product-sync": 0.33, "notification.user-notices": 0.94, "notification.order-notices": 1.0,
    "notification.payment-notices": 1.0, "notification.shipping-notices": 1.0, "notification.cart-notices": 1.0,
    "notification.alert-notices": 0.0, "order.inventory-outcomes": 1.0, "order.payment-outcomes": 1.0,
    "order.shipping-outcomes": 1.0, "order.user-replica": 0.0, "order.product-replica": 0.0,
    "payment.inventory-outcomes": 0.0, "payment.order-payments": 0.17, "shipping.order-fulfilment": 1.0,
    "user.identity-erasure": 0.0,
}
DEFAULT_CALLS = (3.0, 0.0)  # assumed: the target's ceiling of 3 DynamoDB calls per event (bench section 2)
DEFAULT_READS = 2.0  # assumed: all but the one write


def _model_key(ref: str) -> str:
    return "audit.trail-*" if ref.startswith("audit.trail-") else ref


def calls_per_event(ref: str) -> tuple[float, float]:
    """(DynamoDB calls, S3 PUTs) per consumed event of a handler (``service.handler``)."""
    return CALLS_PER_EVENT.get(_model_key(ref), DEFAULT_CALLS)


def reads_per_event(ref: str) -> float:
    return READS_PER_EVENT.get(_model_key(ref), DEFAULT_READS)


WAITS_ON_PROVIDER = {"payment.inventory-outcomes"}


@dataclass(frozen=True)
class HandlerLoad:
    ref: str  # service.handler
    topic: str
    records_per_second: float
    ms_per_record: float
    concurrency: int
    batch_size: int = 100
    window_seconds: float = 1.0

    @property
    def busy_partitions(self) -> float:
        return self.records_per_second * self.ms_per_record / 1000 / self.concurrency

    @property
    def partitions_needed(self) -> int:
        return math.ceil(self.busy_partitions / UTILISATION)

    def records_per_invocation(self, partitions: int) -> float:
        """Records in one invocation on one of ``partitions``: what reaches the partition while the mapping
        gathers, i.e. its batching window, or (window 0) the invocation before, which lasts about one record's
        time when its records run side by side; at least 1, at most the batch size. Assumes the records spread
        evenly over the partitions (uniform keys) and arrive evenly in time."""
        if not self.records_per_second:
            return 1.0
        per_partition = self.records_per_second / max(1, partitions)
        gathering = max(self.window_seconds, self.ms_per_record / 1000)
        return min(float(self.batch_size), max(1.0, per_partition * gathering))

    def invocations_per_second(self, partitions: int) -> float:
        return self.records_per_second / self.records_per_invocation(partitions)

    def billed_seconds(self, partitions: int) -> float:
        """Lambda duration per second: an invocation bills its wall time, which the records of different keys
        share when they run side by side (at most the concurrency, at most the records it holds)."""
        side_by_side = max(1.0, min(self.concurrency, self.records_per_invocation(partitions)))
        return self.records_per_second * self.ms_per_record / 1000 / side_by_side


def ms_per_record(ref: str, handler: catalog.HandlerSpec) -> float:
    dynamodb, s3 = calls_per_event(ref)
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
            out.append(HandlerLoad(ref, handler.topic, rate, ms_per_record(ref, handler), handler.concurrency,
                                   handler.batch_size, handler.max_batching_window_seconds))
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
    dynamodb, _ = calls_per_event(ref)
    p50 = RUNTIME_MS + dynamodb * DYNAMODB_MS + (PROVIDER_MS if ref in WAITS_ON_PROVIDER else 0.0)
    p99 = RUNTIME_MS + dynamodb * DYNAMODB_P99_MS + (PROVIDER_P99_MS if ref in WAITS_ON_PROVIDER else 0.0)
    return p50, p99


# Option B authorises at OrderCreated (payment.order-payments) what payment.inventory-outcomes charges today: the
# same calls (commit AUTHORISING, then the outcome with its event) and the provider's answer as slow as a charge
# (assumed); the capture after the reservation is off the critical path.
AUTHORISE_REF = "payment.inventory-outcomes"
AUTHORISE_AT = "payment.order-payments"


def partition_wait_ms(load: HandlerLoad, partitions: int, duration_ms: float) -> tuple[float, float]:
    """(p50, p99) a record waits for the invocation already running on its partition (window 0: the mapping
    invokes a partition once at a time, so a record that arrives meanwhile waits for it to end). An invocation
    lasts ``duration_ms`` per round of records side by side; the partition is busy that share of the time
    (at most always), and a record arriving during an invocation waits its remainder (uniform: arrivals spread
    evenly in time, assumed)."""
    rounds = math.ceil(load.records_per_invocation(partitions) / load.concurrency)
    lasts = duration_ms * rounds
    busy = min(1.0, load.invocations_per_second(partitions) / max(1, partitions) * lasts / 1000)
    def quantile(q: float) -> float:  # P(wait > x) = busy x (1 - x / lasts)
        return max(0.0, lasts * (1 - (1 - q) / busy)) if busy else 0.0
    return quantile(0.5), quantile(0.99)


def saga_hops(*, direct_publish: bool = False, authorise_beside: bool = False,
              loaded: tuple[float, dict[str, int]] | None = None) -> list[tuple[str, float, float]]:
    """(hop, p50, p99) from POST /orders to the order CONFIRMED, the critical path of the catalog.

    ``direct_publish``: each outbox hop is a produce right after the commit (the stream relay only a fallback)
    instead of the DynamoDB stream's poll. ``authorise_beside``: the payment is authorised beside the reservation
    at OrderCreated and the order confirmed on both facts, so the slower of the two branches counts (its p99
    too: the sum of p99s stays an upper bound), and the charge's own hop goes. ``loaded`` (orders/s, partitions
    per topic): each handler hop also waits for the invocation running on its partition (partition_wait_ms);
    without it, an idle system."""
    if direct_publish:
        def outbox(service: str, topic: str) -> tuple[str, float, float]:
            return (f"{service}: produce after the commit -> {topic}", *PRODUCE_MS)
    else:
        def outbox(service: str, topic: str) -> tuple[str, float, float]:
            return (f"{service} relay: DynamoDB stream -> {topic}", STREAM_MS[0] + PRODUCE_MS[0],
                    STREAM_MS[1] + PRODUCE_MS[1])
    by_ref = {ld.ref: ld for ld in loads(loaded[0])} if loaded else {}

    def delivered(ref: str, label: str = "", at: str = "") -> tuple[str, float, float]:
        p50, p99 = _handler_ms(ref)
        wait50 = wait99 = 0.0
        if loaded:
            load = by_ref[at or ref]
            if at:  # another handler doing this work: its time, and the concurrency the work needs (the charge's)
                load = HandlerLoad(load.ref, load.topic, load.records_per_second, ms_per_record(
                    ref, catalog.service(ref.split(".")[0]).handler(ref.split(".")[1])), by_ref[ref].concurrency,
                    load.batch_size, load.window_seconds)
            wait50, wait99 = partition_wait_ms(load, loaded[1][load.topic], load.ms_per_record)
        return (f"ESM (window 0) + {label or ref}{' + its partition' if loaded else ''}",
                ESM_MS[0] + p50 + wait50, ESM_MS[1] + p99 + wait99)

    hops = [("POST /orders (API Gateway + order function, 3 DynamoDB calls)",
             API_MS[0] + 3 * DYNAMODB_MS, API_MS[1] + 3 * DYNAMODB_P99_MS),
            outbox("order", "order-events")]
    if authorise_beside:
        branches = [(delivered("inventory.order-reservations"), outbox("inventory", "inventory-events")),
                    (delivered(AUTHORISE_REF, f"{AUTHORISE_AT} authorising", AUTHORISE_AT),
                     outbox("payment", "payment-events"))]
        sums = [(h[1] + o[1], h[2] + o[2]) for h, o in branches]
        hops.append(("beside: " + " | ".join(f"{h[0]}, {o[0]}" for h, o in branches) + " (the slower)",
                     max(p50 for p50, _ in sums), max(p99 for _, p99 in sums)))
    else:
        hops += [delivered("inventory.order-reservations"), outbox("inventory", "inventory-events"),
                 delivered("payment.inventory-outcomes"), outbox("payment", "payment-events")]
    hops.append(delivered("order.payment-outcomes"))
    return hops


SAGA_TARGET_MS = (500.0, 1500.0)  # issue 24: POST -> CONFIRMED p50 <= 0.5 s, p99 <= 1.5 s
SAGA_OPTIONS = {"today": {}, "A: publish after the commit": {"direct_publish": True},
                "B: authorise beside the reservation": {"authorise_beside": True},
                "A + B": {"direct_publish": True, "authorise_beside": True}}


def saga_options(loaded: tuple[float, dict[str, int]] | None = None) -> list[tuple[str, float, float, bool, bool]]:
    """(option, p50, p99, p50 met, p99 met) for each way of shortening the critical path."""
    out = []
    for name, flags in SAGA_OPTIONS.items():
        hops = saga_hops(**flags, loaded=loaded)
        p50, p99 = sum(h[1] for h in hops), sum(h[2] for h in hops)
        out.append((name, p50, p99, p50 <= SAGA_TARGET_MS[0], p99 <= SAGA_TARGET_MS[1]))
    return out


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
LOG_KB_PER_INVOCATION = 0.3  # one structured line per batch and per failure; Powertools metrics (EMF) per batch
# Records per invocation: HandlerLoad.records_per_invocation, from each topic's partitions in the environment.
WRU_PER_EVENT = 5.0  # one transaction of ~2.5 items (state, outbox) at 2 WRU each
TRAIL_WRU = 2.0  # the trail's one conditional put, in a transaction of one item
# The trail table keeps what its TTL allows (a TTL on trail items, being added by another engineer in issue 24);
# the S3 archive keeps the seven years. Storage is then a steady size, not a month's growth.
TRAIL_RETENTION_DAYS = 7


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
    # on-demand mappings have no metrics configuration (EventCount, KafkaMetrics are provisioned-mode only)
    return msk + (0 if config.on_demand_pollers else mappings * MAPPING_METRICS)


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
    partitions = {t.name: config.partition_count(t.name) for t in catalog.TOPICS}
    pollers = 0
    for _group, handlers in config.poller_groups().items():
        minimum = sum(config.pollers(h)[0] for h in handlers)
        by_ref = {ld.ref.split(".", 1)[1]: ld for ld in all_loads if ld.topic in {h.topic for h in handlers}}
        busy = sum(math.ceil(by_ref[h.name].billed_seconds(partitions[h.topic]) / INVOCATIONS_PER_POLLER)
                   for h in handlers if h.name in by_ref)
        pollers += _epus(max(minimum, busy))
    out["event pollers (EPUs)"] = pollers * EPU_HOUR * HOURS_PER_MONTH
    busy_seconds = sum(ld.billed_seconds(partitions[ld.topic]) for ld in all_loads)
    invocations = sum(ld.invocations_per_second(partitions[ld.topic]) for ld in all_loads)
    produced = ingest_kb_s / RECORD_KB
    api = orders_per_second * 4  # cart create, items x2, order
    lambda_seconds = busy_seconds + produced * 0.010 + api * 0.030  # relays ~10 ms/record, API ~30 ms
    out["Lambda"] = (lambda_seconds * LAMBDA_MEMORY_GB * LAMBDA_GB_SECOND * SECONDS_PER_MONTH
                     + (invocations + produced / 10 + api) * LAMBDA_REQUEST * SECONDS_PER_MONTH)
    reads = sum(ld.records_per_second * reads_per_event(ld.ref) for ld in all_loads)
    writes = sum(ld.records_per_second * (TRAIL_WRU if ld.ref.startswith("audit.trail-") else WRU_PER_EVENT)
                 for ld in all_loads)
    out["DynamoDB requests"] = (writes * DYNAMODB_WRU + reads * DYNAMODB_RRU) * SECONDS_PER_MONTH
    trail = [ld for ld in all_loads if ld.ref.startswith("audit.trail-")]
    trail_kb_s = sum(ld.records_per_second for ld in trail) * RECORD_KB
    out[f"DynamoDB storage (the trail's {TRAIL_RETENTION_DAYS} days)"] = (
        trail_kb_s * TRAIL_RETENTION_DAYS * 86400 / 1e6 * DYNAMODB_GB_MONTH)
    # one object per trail invocation (a batch per partition and day: audit.logic.archive_batch)
    archive_puts = sum(ld.invocations_per_second(partitions[ld.topic]) for ld in trail if ld.records_per_second)
    out["S3 archive PUTs"] = archive_puts * S3_PUT * SECONDS_PER_MONTH
    out["S3 archive storage (a month's data)"] = trail_kb_s * SECONDS_PER_MONTH / 1e6 * S3_GB_MONTH
    # X-Ray's, and where the mappings run on demand Lambda's and STS's, which their pollers need (stacks/network.py)
    endpoints = 3 if config.on_demand_pollers else 1
    out["VPC endpoints"] = endpoints * len(config.availability_zones) * ENDPOINT_AZ_HOUR * HOURS_PER_MONTH
    out["CloudWatch Logs"] = ((invocations + api) * LOG_KB_PER_INVOCATION * SECONDS_PER_MONTH
                              / 1e6 * CLOUDWATCH_LOG_GB)
    out[CLOUDWATCH_METRICS_ITEM] = cloudwatch_metrics_cost(cloudwatch_metrics(config))
    return out


def rounded_partitions(needed: int, brokers: int) -> int:
    """A topic's partitions: what the model needs, in whole multiples of the brokers (each leads as many), at
    least one per broker."""
    return max(brokers, math.ceil(needed / brokers) * brokers)


def concurrent_invocations(orders_per_second: float, partitions: dict[str, int]) -> float:
    """Invocations running at once: each handler's billed seconds per second (HandlerLoad.billed_seconds)."""
    return sum(ld.billed_seconds(partitions[ld.topic]) for ld in loads(orders_per_second))


def maximum_pollers(config: Any) -> dict[str, int]:
    """Per poller group: the maximum pollers its mappings may scale to (stacks.config.EnvironmentConfig.pollers)."""
    return {group: sum(config.pollers(h)[1] for h in handlers) for group, handlers in config.poller_groups().items()}


def main(argv: list[str]) -> None:
    rate = float(argv[0]) if argv else 2000.0
    prod = load_config(_environments(), "prod")
    prod_partitions = {t.name: prod.partition_count(t.name) for t in catalog.TOPICS}
    print(f"| topic | records/s at {rate:g} orders/s | partitions needed | busiest handler | ms/record "
          f"| rounded to {prod.broker_count} brokers | prod (cdk.json) |")
    print("|---|---|---|---|---|---|---|")
    needed_in_all = 0
    for topic_name, (needed, load) in partitions_needed(rate).items():
        rounded = rounded_partitions(needed, prod.broker_count)
        needed_in_all += rounded
        print(f"| {topic_name} | {records_per_second(topic_name, rate):,.0f} | {needed} | {load.ref} "
              f"| {load.ms_per_record:.0f} (concurrency {load.concurrency}) | {rounded} "
              f"| {prod_partitions[topic_name]} |")
    groups = maximum_pollers(prod)
    print(f"\nprod: {sum(prod_partitions.values())} partitions in all (the model, rounded: {needed_in_all}); "
          f"maximum pollers {sum(groups.values())} ({' + '.join(f'{n} {g}' for g, n in groups.items())})")
    print(f"concurrent invocations at {rate:g} orders/s on prod's partitions: "
          f"{concurrent_invocations(rate, prod_partitions):,.0f}")
    print(f"first bottleneck with prod's partitions: {first_bottleneck()}")

    hops = saga_hops()
    print("\n| hop | p50 ms | p99 ms |\n|---|---|---|")
    for name, p50, p99 in hops:
        print(f"| {name} | {p50:.0f} | {p99:.0f} |")
    print(f"| **POST /orders -> CONFIRMED** | **{sum(h[1] for h in hops):.0f}** "
          f"| **{sum(h[2] for h in hops):.0f}** (sum of p99s: an upper bound) |")
    def met(ok: bool) -> str:
        return "met" if ok else "not met"

    print(f"\n| option | idle p50 / p99 ms | meets p50 <= {SAGA_TARGET_MS[0]:.0f} / p99 <= {SAGA_TARGET_MS[1]:.0f} "
          f"| at {rate:g} orders/s on prod's partitions | meets |")
    print("|---|---|---|---|---|")
    for idle, busy in zip(saga_options(), saga_options((rate, prod_partitions)), strict=True):
        print(f"| {idle[0]} | {idle[1]:.0f} / {idle[2]:.0f} | {met(idle[3])} / {met(idle[4])} "
              f"| {busy[1]:.0f} / {busy[2]:.0f} | {met(busy[3])} / {met(busy[4])} |")

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
