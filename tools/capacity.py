"""The capacity model behind docs/capacity.md: partitions each topic needs at a given order rate.

    python -m tools.capacity [ORDERS_PER_SECOND]

A mapping runs one invocation per partition at a time, and a batch is worked through record by record
(up to HandlerSpec.concurrency records of different keys side by side). A handler keeps up when

    partitions >= records/s x time per record / (concurrency x utilisation)

Time per record is the consumer runtime (bench/results.md section 3) plus the AWS calls the handler makes
per event (section 2) at the per-call latencies below (assumed: AWS publishes no such figures), plus the
e-mail send and the payment provider where the handler waits on them.

Beside it: the saga's latency from POST /orders to CONFIRMED, idle and loaded (saga_hops), and the cost per
month of each environment (monthly_cost): DynamoDB from the capacity units each handler and API request uses
(bench section 2), on demand or provisioned as cdk.json's ``dynamodb`` says, with direct publish where cdk.json's
``directPublish`` is on, and the trail kept for ``trailRetentionDays``. ``main`` prints issue 24's targets
beside the figures before it (BEFORE_ISSUE_24, frozen).
"""

from __future__ import annotations

import functools
import json
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopstream import catalog
from stacks.config import (
    EXPRESS_AVAILABILITY_ZONES,
    EXPRESS_REPLICATION_FACTOR,
    INVOCATIONS_PER_POLLER,
    MSK_PARTITIONS_PER_EXPRESS_BROKER,
)
from stacks.config import load as load_config

UTILISATION = 0.7  # headroom: a partition busy 70% of the time at the design rate
RUNTIME_MS = 0.065  # consumer runtime per record (bench section 3: 62.9 µs)
DYNAMODB_MS = 6.0  # one DynamoDB call from Lambda in the same region (assumed p50; transactions included)
S3_PUT_MS = 7.0  # one S3 PutObject (assumed)
SES_MS = 30.0  # one SES SendEmail (assumed)
COGNITO_MS = 30.0  # one Cognito AdminDeleteUser (assumed)
PROVIDER_MS = 300.0  # a card network's authorisation, capture or void (assumed)

# --- the order mix ---------------------------------------------------------------------------------------
# Records per order by event type, from two shares. Every order comes from a cart (created, filled twice, checked
# out). The payment is authorised beside the reservation (issue 24, option B): AUTHORISED_SHARE of orders are
# authorised, the rest declined (PaymentFailed); STOCK_OUT_SHARE find no stock (InventoryReservationFailed), and an
# authorised one of those is voided (PaymentVoided). A kept order (authorised and reserved) is confirmed, captured
# (PaymentProcessed), shipped and delivered; every other one is cancelled, and a declined one's reserved stock
# released. Cancels between the authorisation and the capture (a hop apart) are taken as none: assumed.
# Notifications: the order's (confirmed, cancelled, shipped), a decline, the parcel's (dispatched, delivered).
# Audit: every mutating API call (cart create, cart items, order, dispatch, deliver).
AUTHORISED_SHARE = 0.8  # one order in five declined: the model's mix since 2026-11, and bench section 2's flow
STOCK_OUT_SHARE = 0.01  # assumed (the bench's flow has stock for every order)


def order_mix(authorised: float = AUTHORISED_SHARE, stock_out: float = STOCK_OUT_SHARE) -> dict[str, float]:
    """Records per order by event type (see above)."""
    kept = authorised * (1 - stock_out)
    declined = 1 - authorised
    notices = {"order": kept + (1 - kept) + kept, "payment": declined, "shipping": 2 * kept}
    return {
        "CartCreated": 1.0, "CartUpdated": 2.0,
        "OrderCreated": 1.0, "OrderConfirmed": kept, "OrderCancelled": 1 - kept, "OrderShipped": kept,
        "InventoryReserved": 1 - stock_out, "InventoryReservationFailed": stock_out,
        "InventoryReleased": declined * (1 - stock_out),
        "PaymentInitiated": 1.0, "PaymentAuthorised": authorised, "PaymentFailed": declined,
        "PaymentProcessed": kept, "PaymentVoided": authorised * stock_out,
        "ShippingCreated": kept, "ShippingDispatched": kept, "ShippingDelivered": kept,
        "NotificationSent": sum(notices.values()), "AuditRecorded": 3.0 + 2 * kept,
    }


RECORDS_PER_ORDER = order_mix()


# --- what a handler does per event: bench section 2 ----------------------------------------------------------
@dataclass(frozen=True)
class Measured:
    """Per event a handler takes (an event of its types): DynamoDB calls and S3 PUTs (its time), and the capacity
    units it uses (its bill) on its service's table (write, GSI write, read) and on the customer key store."""

    dynamodb_calls: float
    wru: float
    gsi_wru: float = 0.0
    rru: float = 0.0
    key_store_wru: float = 0.0
    key_store_rru: float = 0.0
    s3_puts: float = 0.0


# Source: `python -m bench.aws_calls` of 2026-12-05 (this branch: key-parallel handlers, the trail's conditional put,
# option B; 100 orders through every service against moto; the units by bench/capacity_units.py, DynamoDB's documented
# item-size rules, a transaction's items twice). The bench divides by every record a handler's mapping delivers (no
# filters: shopstream/filters.py); these are per event the handler takes, i.e. the bench's figure x its "events" /
# the records of the handler's types in the bench's flow (OrderCreated 100, OrderConfirmed 80, OrderCancelled 20,
# OrderShipped 40, InventoryReserved 100, InventoryReleased 20, PaymentInitiated 100, PaymentAuthorised 80,
# PaymentProcessed 80, PaymentFailed 20, ShippingCreated 80, ShippingDispatched 40, ShippingDelivered 40).
# cart.order-checkout: the bench checks out one order in four from a cart (0.25 GetItem + 0.25 TransactWriteItems
# per OrderCreated); this model's orders all come from carts, so four times the bench's. The notices' key store
# units are the key check in their transaction (personal.still_current); notification.user-notices also opens the
# address with KMS (0.62 kms.Decrypt per event, not timed: its topic has no load here). The trail archives a batch
# per partition and day in one object (audit.logic.archive_batch), after the batch: for the time a record holds its
# partition taken at one PUT per 20 records (assumed; at the design rate a trail batch holds ~100); the cost counts
# one PUT per trail invocation.
ARCHIVE_PUTS_PER_RECORD = 1 / 20
TRAIL_WRU = 1.0  # the trail's conditional PutItem of an event under 1 KB (bench: 1.00 on every trail but order's)
MEASURED = {
    "audit.trail-*": Measured(1.0, TRAIL_WRU, s3_puts=ARCHIVE_PUTS_PER_RECORD),
    "audit.trail-order": Measured(1.0, 1.10, s3_puts=ARCHIVE_PUTS_PER_RECORD),  # an OrderCreated is over 1 KB at times
    # counted per batch (audit.logic.count_batch): an event's fact, and its window's counters once per batch and
    # source partition (was 6.50, 5.16 and 5.69 WRU counted per event); the bench's 100-record batches are what a
    # partition gathers at this rate (records_per_invocation: the batch size)
    "audit.analytics-orders": Measured(1.10, 4.10), "audit.analytics-payments": Measured(0.78, 3.61, rru=0.20),
    "audit.analytics-inventory": Measured(1.12, 3.06),
    "cart.order-checkout": Measured(2.0, 6.0, 1.0, 1.0), "cart.product-sync": Measured(3.0, 12.0, 4.0, 3.0),
    "cart.user-sync": Measured(3.0, 10.0, 2.0, 3.0),
    "catalog.stock-availability": Measured(1.0, 1.0, 0.36),
    "inventory.order-reservations": Measured(2.67, 5.0, rru=4.33),
    "inventory.payment-outcomes": Measured(3.0, 4.40, rru=2.0), "inventory.product-sync": Measured(1.33, 8.0, rru=1.33),
    "notification.user-notices": Measured(2.88, 6.94, 0.0, 0.94, 1.88, 0.94),
    # a message is in no index since 2026-12-05 (it had been twice per notice: recorded, finished)
    **{f"notification.{kind}-notices": Measured(3.0, 6.0, 0.0, 1.0, 2.0, 1.0)
       for kind in ("order", "payment", "shipping", "cart")},
    "notification.alert-notices": Measured(2.0, 5.0),
    "order.inventory-outcomes": Measured(2.0, 4.0, 1.0, 1.0), "order.payment-outcomes": Measured(1.56, 5.33, 1.11, 1.0),
    "order.shipping-outcomes": Measured(2.0, 4.50, 1.0, 1.0), "order.user-replica": Measured(1.0, 1.0),
    "order.product-replica": Measured(1.0, 1.0),
    "payment.order-payments": Measured(2.0, 6.17, rru=0.17), "payment.inventory-outcomes": Measured(2.0, 4.60),
    "shipping.order-fulfilment": Measured(2.0, 3.60, rru=1.0),
    "user.identity-erasure": Measured(0.0, 0.0),  # no table, no idempotency record: one Cognito call (COGNITO_MS)
}
DEFAULT_MEASURED = Measured(3.0, 5.0, rru=2.0)  # assumed: a handler the bench does not exercise (the calls' ceiling)
# The API's mutating requests, per request (bench section 2, rows "<service> API POST"): the order POST writes its
# state, event, outbox item and audit record in one transaction (12 WRU + 2 on gsi1's PENDING shard) after reading
# the user's and the products' replicas and the customer key; a cart POST 10 + 1; a cart's items changed (PUT: the
# cart and its product index read, the cart updated, its event and audit record) 6 + 2 on gsi1's idle-cart shard; a
# shipping POST (dispatch, deliver) 6. Per order: a cart created and changed twice, the order, and a kept order's
# dispatch and delivery.
API_MEASURED = {
    "order API POST": Measured(4.0, 12.0, 2.0, 2.0, key_store_rru=1.0),
    "cart API POST": Measured(1.0, 10.0, 1.0),
    "cart API PUT": Measured(3.0, 6.0, 2.0, 2.0),
    "shipping API POST": Measured(5.0, 6.0, rru=2.0, key_store_rru=2.0),
}
API_FUNCTION_MS = 30.0  # an API function's billed time per request (assumed)


def api_requests_per_order() -> dict[str, float]:
    kept = RECORDS_PER_ORDER.get("ShippingDispatched", 0.0)
    return {"cart API POST": 1.0, "cart API PUT": 2.0, "order API POST": 1.0, "shipping API POST": 2 * kept}


def _model_key(ref: str) -> str:
    return "audit.trail-*" if ref.startswith("audit.trail-") and ref not in MEASURED else ref


def measured(ref: str) -> Measured:
    """What a handler (``service.handler``) does per event it takes."""
    return MEASURED.get(_model_key(ref), DEFAULT_MEASURED)


def calls_per_event(ref: str) -> tuple[float, float]:
    """(DynamoDB calls, S3 PUTs) per event a handler takes (bench/key_parallel.py replays them)."""
    done = measured(ref)
    return done.dynamodb_calls, done.s3_puts


# The payment handlers wait on the provider for every record (the authorisation at OrderCreated, the capture or the
# void after the reservation; an OrderCancelled or a declined order's reservation that calls nothing is taken as
# waiting too: assumed, it errs on the slow side).
WAITS_ON_PROVIDER = {"payment.order-payments", "payment.inventory-outcomes"}

# --- direct publish (issue 24, option A; cdk.json ``directPublish``) ------------------------------------------------
# The critical path's committers publish their events right after their commit and delete the outbox items the
# broker acknowledged; the stream relay stays the fallback. Figures from the direct-publish change's engineer
# (docs/decisions.md, 2026-12-05; estimates): a delete costs 1 WRU per event; ~8% of deletes miss their insert's
# stream batch and cost the relay one strongly consistent read (1 RRU, items under 4 KB); the relay's waits for items
# within their grace are negligible; a committer's commit takes ~14 ms longer (the produce and the delete).
# The committers and what their commits carry: the order POST (OrderCreated and its AuditRecorded), the reservation,
# the authorisation and the capture or void. (A release is published by whichever of inventory's handlers takes the
# cancellation first: counted as direct, an upper bound.) The engineer's ~5.2 direct events per order were the charge's
# flow; with the authorisation beside the reservation the mix gives ~6.0 (PaymentAuthorised).
DIRECT_PUBLISHERS = frozenset({"order.api", "inventory.order-reservations", "payment.order-payments",
                               "payment.inventory-outcomes"})
DIRECT_EVENTS = {"order": ("OrderCreated",),
                 "inventory": ("InventoryReserved", "InventoryReservationFailed", "InventoryReleased"),
                 "payment": ("PaymentInitiated", "PaymentAuthorised", "PaymentFailed", "PaymentProcessed",
                             "PaymentVoided", "PaymentRefunded")}
DIRECT_AUDIT_PER_ORDER = 1.0  # the order POST's AuditRecorded, in its commit
DIRECT_DELETE_WRU = 1.0
DIRECT_READ_BACK_SHARE = 0.08
DIRECT_COMMIT_MS = 14.0
DIRECT_ENDPOINTS = 2  # SQS and KMS interface endpoints per AZ (DynamoDB's is a free gateway endpoint)


def direct_publish(config: Any) -> bool:
    """Whether the environment publishes right after the commit (cdk.json ``directPublish``; False where the
    setting is not known yet)."""
    return bool(getattr(config, "direct_publish", False))


def direct_events_per_second(orders_per_second: float) -> dict[str, float]:
    """Directly published events per second, by the service whose table holds their outbox items."""
    out = {service: sum(RECORDS_PER_ORDER.get(name, 0.0) for name in names) * orders_per_second
           for service, names in DIRECT_EVENTS.items()}
    out["order"] += DIRECT_AUDIT_PER_ORDER * orders_per_second
    return out


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


def ms_per_record(ref: str, handler: catalog.HandlerSpec, *, direct: bool = False) -> float:
    """Time one event holds its slot: the runtime, the handler's AWS calls, SES, Cognito or the provider where it
    waits on them, and (``direct``: the environment publishes after the commit) a direct publisher's produce and
    delete."""
    done = measured(ref)
    ms = RUNTIME_MS + done.dynamodb_calls * DYNAMODB_MS + done.s3_puts * S3_PUT_MS
    if "email" in handler.needs:
        ms += SES_MS
    if "identity" in handler.needs:
        ms += COGNITO_MS
    if ref in WAITS_ON_PROVIDER:
        ms += PROVIDER_MS
    if direct and ref in DIRECT_PUBLISHERS:
        ms += DIRECT_COMMIT_MS
    return ms


def loads(orders_per_second: float, *, direct: bool = False) -> list[HandlerLoad]:
    """Every handler of the catalog at an order rate (``direct``: with direct publish on)."""
    out = []
    for spec in catalog.SERVICES:
        for handler in spec.handlers:
            ref = f"{spec.name}.{handler.name}"
            rate = sum(RECORDS_PER_ORDER.get(name, 0.0) for name in handler.event_types) * orders_per_second
            out.append(HandlerLoad(ref, handler.topic, rate, ms_per_record(ref, handler, direct=direct),
                                   handler.concurrency, handler.batch_size, handler.max_batching_window_seconds))
    return out


def records_per_second(topic_name: str, orders_per_second: float) -> float:
    """Records a second on the topic: each event type once, whatever versions of it the catalog declares (counted
    per version, OrderCreated's and ShippingCreated's two, before 2026-12-05)."""
    names = {e.name for e in catalog.EVENTS if e.topic == topic_name}
    return sum(RECORDS_PER_ORDER.get(name, 0.0) for name in names) * orders_per_second


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


ORDER_POST_CALLS = API_MEASURED["order API POST"].dynamodb_calls  # the replicas, the key, the transaction (bench)
Hop = tuple[str, float, float]  # (hop, p50 ms, p99 ms)
# The parts a hop's time is made of, for the time end to end (saga_distribution): ("lognormal", p50, p99), a latency
# whose logarithm is normal (fitted through its p50 and p99), or ("partition wait", lasts, busy), the wait for the
# invocation running on the partition (partition_wait_ms).
Part = tuple[str, float, float]
Z_99 = 2.3263478740408408  # the standard normal's 99th percentile
SAGA_SAMPLES = 20_000  # orders drawn for the distribution end to end: its p99 rests on 200 of them


def partition_wait_ms(load: HandlerLoad, partitions: int, duration_ms: float) -> tuple[float, float]:
    """(p50, p99) a record waits for the invocation already running on its partition (window 0: the mapping
    invokes a partition once at a time, so a record that arrives meanwhile waits for it to end). An invocation
    lasts ``duration_ms`` per round of records side by side; the partition is busy that share of the time
    (at most always), and a record arriving during an invocation waits its remainder (uniform: arrivals spread
    evenly in time, assumed)."""
    return _part_quantiles(("partition wait", *partition_busy(load, partitions, duration_ms)))


def partition_busy(load: HandlerLoad, partitions: int, duration_ms: float) -> tuple[float, float]:
    """(ms an invocation lasts, share of the time its partition has one running)."""
    rounds = math.ceil(load.records_per_invocation(partitions) / load.concurrency)
    lasts = duration_ms * rounds
    return lasts, min(1.0, load.invocations_per_second(partitions) / max(1, partitions) * lasts / 1000)


class _Path:
    """The hops of the saga's critical path, idle or ``loaded`` (orders/s, partitions per topic), and the parts
    each hop's time is made of (``parts``, by hop)."""

    def __init__(self, direct_publish: bool, loaded: tuple[float, dict[str, int]] | None) -> None:
        self.direct_publish, self.loaded = direct_publish, loaded
        self.by_ref = {ld.ref: ld for ld in loads(loaded[0], direct=direct_publish)} if loaded else {}
        self.parts: dict[str, list[Part]] = {}

    def _hop(self, name: str, parts: list[Part]) -> Hop:
        """The hop, its p50 and p99 the sums of its parts' (each part at its p99 at once: an upper bound)."""
        self.parts[name] = parts
        quantiles = [_part_quantiles(part) for part in parts]
        return (name, sum(q[0] for q in quantiles), sum(q[1] for q in quantiles))

    def outbox(self, service: str, topic: str) -> Hop:
        if self.direct_publish:
            return self._hop(f"{service}: produce after the commit -> {topic}", [("lognormal", *PRODUCE_MS)])
        return self._hop(f"{service} relay: DynamoDB stream -> {topic}",
                         [("lognormal", *STREAM_MS), ("lognormal", *PRODUCE_MS)])

    def delivered(self, ref: str, doing: str = "") -> Hop:
        calls = measured(ref).dynamodb_calls
        # one invocation's calls taken together (their p50s and p99s added): they share its moment
        parts: list[Part] = [("lognormal", *ESM_MS), ("lognormal", RUNTIME_MS, RUNTIME_MS),
                             ("lognormal", calls * DYNAMODB_MS, calls * DYNAMODB_P99_MS)]
        if ref in WAITS_ON_PROVIDER:
            parts.append(("lognormal", PROVIDER_MS, PROVIDER_P99_MS))
        if self.loaded:
            load = self.by_ref[ref]
            parts.append(("partition wait", *partition_busy(load, self.loaded[1][load.topic], load.ms_per_record)))
        name = f"ESM (window 0) + {ref}{f' {doing}' if doing else ''}{' + its partition' if self.loaded else ''}"
        return self._hop(name, [part for part in parts if part[0] != "lognormal" or part[1] > 0])

    def post(self) -> Hop:
        return self._hop(f"POST /orders (API Gateway + order function, {ORDER_POST_CALLS:g} DynamoDB calls)",
                         [("lognormal", *API_MS),
                          ("lognormal", ORDER_POST_CALLS * DYNAMODB_MS, ORDER_POST_CALLS * DYNAMODB_P99_MS)])


def _part_quantiles(part: Part) -> tuple[float, float]:
    kind, a, b = part
    if kind == "lognormal":
        return a, b
    lasts, busy = a, b
    def quantile(q: float) -> float:  # P(wait > x) = busy x (1 - x / lasts)
        return max(0.0, lasts * (1 - (1 - q) / busy)) if busy else 0.0
    return quantile(0.5), quantile(0.99)


@functools.cache
def _draws(count: int, samples: int) -> tuple[tuple[tuple[float, float], ...], ...]:
    """``count`` independent series of ``samples`` draws, each a (standard normal, uniform) pair, the same on every
    run (seeded): the distribution end to end is a function of the model alone, and more partitions never draw a
    longer time."""
    rng = random.Random(24)
    return tuple(tuple((rng.gauss(0.0, 1.0), rng.random()) for _ in range(samples)) for _ in range(count))


def _sample(part: Part, draws: tuple[tuple[float, float], ...]) -> list[float]:
    kind, a, b = part
    if kind == "lognormal":
        mu, sigma = math.log(a), (math.log(b) - math.log(a)) / Z_99
        return [math.exp(mu + sigma * normal) for normal, _ in draws]
    lasts, busy = a, b  # busy that share of the time; arriving then, a record waits the invocation's remainder
    return [lasts * (1.0 - uniform / busy) if uniform < busy else 0.0 for _, uniform in draws]


def _saga(path: _Path, before_issue_24: bool) -> tuple[list[Hop], dict[str, list[Hop]]]:
    """The hops every order takes in turn, and the branches it takes side by side (the later one confirms)."""
    hops = [path.post(), path.outbox("order", "order-events")]
    if before_issue_24:
        return hops + [path.delivered("inventory.order-reservations"), path.outbox("inventory", "inventory-events"),
                       path.delivered("payment.inventory-outcomes", "charging"),
                       path.outbox("payment", "payment-events"), path.delivered("order.payment-outcomes")], {}
    return hops, {"reservation": [path.delivered("inventory.order-reservations"),
                                  path.outbox("inventory", "inventory-events"),
                                  path.delivered("order.inventory-outcomes")],
                  "authorisation": [path.delivered("payment.order-payments", "authorising"),
                                    path.outbox("payment", "payment-events"), path.delivered("order.payment-outcomes")]}


def saga_branches(*, direct_publish: bool = False,
                  loaded: tuple[float, dict[str, int]] | None = None) -> dict[str, list[Hop]]:
    """The two branches from OrderCreated as the catalog has them (issue 24, option B): the reservation and the
    authorisation side by side, each to the handler that confirms the order if its fact comes last."""
    return _saga(_Path(direct_publish, loaded), False)[1]


def saga_hops(*, direct_publish: bool = False, before_issue_24: bool = False,
              loaded: tuple[float, dict[str, int]] | None = None) -> list[Hop]:
    """(hop, p50, p99) from POST /orders to the order CONFIRMED, the critical path of the catalog.

    As built: the payment authorised beside the reservation (payment.order-payments waits on the provider beside
    inventory.order-reservations), the order confirmed by whichever of order.inventory-outcomes and
    order.payment-outcomes takes the last fact; the later branch counts; the capture (payment.inventory-outcomes) is
    off the path. ``before_issue_24``: the path as it was, the charge after the reservation
    (payment.inventory-outcomes, with the provider) and the order confirmed on it. ``direct_publish``: each outbox hop
    is a produce right after the commit (the stream relay only a fallback) instead of the DynamoDB stream's poll
    (cdk.json ``directPublish``). ``loaded`` (orders/s, partitions per topic): each handler hop also waits for the
    invocation running on its partition (partition_wait_ms); without it, an idle system. Summed (saga_total), the
    hops' p99s are an upper bound: every part at its p99 at once; saga_distribution is the time end to end."""
    hops, branches = _saga(_Path(direct_publish, loaded), before_issue_24)
    if not branches:
        return hops
    sums = {name: (sum(h[1] for h in hs), sum(h[2] for h in hs)) for name, hs in branches.items()}
    hops.append((f"the later of the {' and the '.join(branches)}, each to its confirmation",
                 max(p50 for p50, _ in sums.values()), max(p99 for _, p99 in sums.values())))
    return hops


def saga_distribution(*, direct_publish: bool = False, before_issue_24: bool = False,
                      loaded: tuple[float, dict[str, int]] | None = None,
                      samples: int = SAGA_SAMPLES) -> tuple[float, float]:
    """(p50, p99) ms of POST /orders -> CONFIRMED end to end, as an order meets it: every part of every hop drawn on
    its own (independent: a stream's poll does not know what the provider is doing), the branches' sums compared
    per order. Where the parts are skewed, as latencies are, the p50 of the sum is above the sum of the p50s, and the
    p99 below the sum of the p99s (saga_total's, which would take every part at its p99 for the same order)."""
    path = _Path(direct_publish, loaded)
    hops, branches = _saga(path, before_issue_24)
    series: list[list[list[Part]]] = [[path.parts[hop[0]] for hop in hops]]
    series += [[path.parts[hop[0]] for hop in branch] for branch in branches.values()]
    count = sum(len(parts) for hop_parts in series for parts in hop_parts)
    draws = iter(_draws(count, samples))

    def summed(hop_parts: list[list[Part]]) -> list[float]:
        total = [0.0] * samples
        for parts in hop_parts:
            for part in parts:
                total = [t + x for t, x in zip(total, _sample(part, next(draws)), strict=True)]
        return total

    head = summed(series[0])
    later = [max(times) for times in zip(*(summed(branch) for branch in series[1:]), strict=True)] \
        if branches else [0.0] * samples
    ordered = sorted(h + b for h, b in zip(head, later, strict=True))
    return ordered[int(0.5 * samples)], ordered[int(0.99 * samples)]


SAGA_TARGET_MS = (500.0, 1500.0)  # issue 24: POST -> CONFIRMED p50 <= 0.5 s, p99 <= 1.5 s
SAGA_BEFORE_ISSUE_24_MS = (951.0, 2969.0)  # the model before issue 24, as the issue quotes it (frozen)
SAGA_OPTIONS = {"before issue 24: charge after the reservation, stream relays": {"before_issue_24": True},
                "B (built): authorise beside the reservation, stream relays": {},
                "A + B: B, publishing after the commit": {"direct_publish": True}}


def saga_total(hops: list[Hop]) -> tuple[float, float]:
    return sum(h[1] for h in hops), sum(h[2] for h in hops)


def saga_options(loaded: tuple[float, dict[str, int]] | None = None) -> list[tuple[str, float, float, bool, bool]]:
    """(option, p50, p99, p50 met, p99 met) for each way of shortening the critical path, end to end
    (saga_distribution)."""
    out = []
    for name, flags in SAGA_OPTIONS.items():
        p50, p99 = saga_distribution(**flags, loaded=loaded)
        out.append((name, p50, p99, p50 <= SAGA_TARGET_MS[0], p99 <= SAGA_TARGET_MS[1]))
    return out


def provider_partition(orders_per_second: float, partitions: dict[str, int], *,
                       direct_publish: bool = False) -> dict[str, float]:
    """The authorisation's partitions at an order rate: records/s per partition, ms an invocation lasts, the share
    of the time one runs, and the (p50, p99) wait of a record that arrives."""
    load = next(ld for ld in loads(orders_per_second, direct=direct_publish) if ld.ref == "payment.order-payments")
    count = partitions[load.topic]
    lasts, busy = partition_busy(load, count, load.ms_per_record)
    wait50, wait99 = partition_wait_ms(load, count, load.ms_per_record)
    return {"partitions": count, "records_per_partition_second": load.records_per_second / count, "lasts_ms": lasts,
            "busy": busy, "wait_p50_ms": wait50, "wait_p99_ms": wait99}


def order_events_partitions_for_target(config: Any, orders_per_second: float, *, direct_publish: bool
                                       ) -> tuple[int | None, int | None, int]:
    """The fewest partitions of order-events (in multiples of the brokers, the others as configured) at which the
    loaded path meets the p50 target, and the p99 target (None: not within what MSK recommends for the brokers),
    and that ceiling."""
    partitions = {t.name: config.partition_count(t.name) for t in catalog.TOPICS}
    others = sum(n for name, n in partitions.items() if name != "order-events")
    ceiling = (config.partitions_per_broker * config.broker_count // config.replication_factor - others)
    ceiling -= ceiling % config.broker_count
    counts = list(range(partitions["order-events"], ceiling + 1, config.broker_count))

    def figures(count: int) -> tuple[float, float]:
        return saga_distribution(direct_publish=direct_publish,
                                 loaded=(orders_per_second, {**partitions, "order-events": count}))

    found: list[int | None] = []
    for i, target in enumerate(SAGA_TARGET_MS):
        # more partitions never lengthen a wait (saga_distribution draws the same for each count): the first count
        # that meets the target, by halving
        low, high = 0, len(counts)
        while low < high:
            middle = (low + high) // 2
            if figures(counts[middle])[i] <= target:
                high = middle
            else:
                low = middle + 1
        found.append(counts[low] if low < len(counts) else None)
    return found[0], found[1], ceiling


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
# Point-in-time recovery (on for every service table: stacks/service/data.py) bills the table's size, per GB-month
# (us-east-1, as known on 2026-12-05, not read on the pricing page). Priced on what the tables keep for a while (the
# trail's and the outbox's retention); the long-lived items (orders, payments, shipments, notices: ~KB an order,
# kept for good) grow with the history, which this steady-rate model does not price (docs/capacity.md).
DYNAMODB_PITR_GB_MONTH = 0.20
# "DynamoDB automatically deletes expired items within a few days of their expiration time" (time-to-live docs):
# an expired item is stored (and backed up) a while longer; assumed 2 days.
TTL_DELETION_LAG_DAYS = 2.0
S3_PUT = 0.005 / 1000
S3_GB_MONTH = 0.023
# Provisioned capacity (prod's busy tables, cdk.json ``dynamodb``): per WCU-hour and RCU-hour, us-east-1 as known on
# 2026-12-05 (not read on the pricing page, as above). Auto scaling keeps the capacity at the configured target
# utilisation of what is consumed, between each table's (and index's) minimum and maximum.
DYNAMODB_WCU_HOUR = 0.00065
DYNAMODB_RCU_HOUR = 0.00013
OUTBOX_TTL_DAYS = 2.0  # shopstream.config.Settings.outbox_ttl_seconds (15 days before 2026-12-05)
KEY_STORE = "customer keys"  # the customer key store: provisioned where cdk.json sizes it (dynamodb.keyStore)
# Interface endpoints, per AZ and hour: X-Ray (the relays' traces) everywhere, Lambda and STS where the mappings'
# pollers run on demand, SQS and KMS where the committers publish directly (stacks/network.py; S3 and DynamoDB are
# free gateway endpoints).
ENDPOINT_AZ_HOUR = 0.01
CLOUDWATCH_LOG_GB = 0.50
RECORD_KB = 1.0
LOG_KB_PER_INVOCATION = 0.3  # one structured line per batch and per failure; Powertools metrics (EMF) per batch
RELAY_MS_PER_RECORD = 10.0  # an outbox relay's billed time per record (assumed); it invokes per 10 records (assumed)
# Records per invocation: HandlerLoad.records_per_invocation, from each topic's partitions in the environment.
# The trail table keeps what its TTL allows (cdk.json ``trailRetentionDays``, per environment); the S3 archive keeps
# the seven years. Storage is then a steady size, not a month's growth.

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


UNIT_KINDS = ("write", "index_write", "read")


def dynamodb_units(orders_per_second: float, *, direct: bool = False) -> dict[str, dict[str, float]]:
    """Capacity units per second each table consumes (a service's table by its service's name, and KEY_STORE):
    write, GSI write and read, from what each handler and API request uses (MEASURED, API_MEASURED) and, ``direct``,
    the committers' deletes and the relays' read-backs."""
    out: dict[str, dict[str, float]] = {}

    def add(table: str, kind: str, units: float) -> None:
        out.setdefault(table, dict.fromkeys(UNIT_KINDS, 0.0))[kind] += units

    def take(service: str, done: Measured, per_second: float) -> None:
        if not per_second:
            return
        add(service, "write", done.wru * per_second)
        add(service, "index_write", done.gsi_wru * per_second)
        add(service, "read", done.rru * per_second)
        if done.key_store_wru or done.key_store_rru:
            add(KEY_STORE, "write", done.key_store_wru * per_second)
            add(KEY_STORE, "read", done.key_store_rru * per_second)

    for ld in loads(orders_per_second):
        if ld.ref != "user.identity-erasure":  # no table
            take(ld.ref.split(".")[0], measured(ld.ref), ld.records_per_second)
    for name, per_order in api_requests_per_order().items():
        take(name.split(" ")[0], API_MEASURED[name], per_order * orders_per_second)
    if direct:
        for service, events in direct_events_per_second(orders_per_second).items():
            add(service, "write", events * DIRECT_DELETE_WRU)
            add(service, "read", events * DIRECT_READ_BACK_SHARE)
    return out


def _provisioned(consumed: float, target: float, minimum: int) -> float:
    """Capacity auto scaling keeps: the consumed units at the target utilisation, at least the minimum. Above the
    maximum it is what the rate needs, not what cdk.json lets auto scaling reach (provisioned_shortfalls lists those:
    priced as if they were raised, since at the maximum the table would throttle instead of serving the rate)."""
    return max(float(minimum), consumed / target)


def provisioned_capacity(config: Any, units: dict[str, dict[str, float]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per provisioned table (cdk.json ``dynamodb.tables``): for its table and its index, (WCU, RCU) that auto scaling
    keeps for the consumed ``units``. The bench does not tell reads on the index from the table's: all on the table."""
    out = {}
    for service, size in config.dynamodb.tables.items():
        if config.dynamodb.throughput(service) is None:
            continue
        used = units.get(service, dict.fromkeys(UNIT_KINDS, 0.0))
        target = config.dynamodb.target_utilisation
        out[service] = {"table": (_provisioned(used["write"], target, size.min_wcu),
                                  _provisioned(used["read"], target, size.min_rcu)),
                        "index": (_provisioned(used["index_write"], target, size.index.min_wcu),
                                  _provisioned(0.0, target, size.index.min_rcu))}
    key_store = config.dynamodb.key_store_throughput()
    if key_store is not None:  # no index
        used = units.get(KEY_STORE, dict.fromkeys(UNIT_KINDS, 0.0))
        target = config.dynamodb.target_utilisation
        out[KEY_STORE] = {"table": (_provisioned(used["write"], target, key_store.min_wcu),
                                    _provisioned(used["read"], target, key_store.min_rcu))}
    return out


def provisioned_shortfalls(config: Any, orders_per_second: float) -> list[str]:
    """The provisioned tables and indexes whose maximum is under what the rate needs at the target utilisation
    (auto scaling stops at the maximum: above it the table runs hotter than the target, and throttles past 100%)."""
    units = dynamodb_units(orders_per_second, direct=direct_publish(config))
    out = []
    target = config.dynamodb.target_utilisation
    checks = []
    for service, size in config.dynamodb.tables.items():
        if config.dynamodb.throughput(service) is None:
            continue
        used = units.get(service, dict.fromkeys(UNIT_KINDS, 0.0))
        checks += [(f"{service} WCU", used["write"], size.max_wcu), (f"{service} RCU", used["read"], size.max_rcu),
                   (f"{service} index WCU", used["index_write"], size.index.max_wcu)]
    key_store = config.dynamodb.key_store_throughput()
    if key_store is not None:
        used = units.get(KEY_STORE, dict.fromkeys(UNIT_KINDS, 0.0))
        checks += [(f"{KEY_STORE} WCU", used["write"], key_store.max_wcu),
                   (f"{KEY_STORE} RCU", used["read"], key_store.max_rcu)]
    for where, consumed, maximum in checks:
        if consumed / target > maximum:
            out.append(f"{where}: needs {consumed / target:,.0f} at {target:.0%} (consumes {consumed:,.0f}), "
                       f"maximum {maximum:,}{' - throttles' if consumed > maximum else ''}")
    return out


def dynamodb_cost(config: Any, orders_per_second: float, *, direct: bool) -> tuple[float, float]:
    """USD per month of the tables' requests: (on demand, provisioned capacity)."""
    units = dynamodb_units(orders_per_second, direct=direct)
    provisioned = provisioned_capacity(config, units)
    on_demand = sum(((u["write"] + u["index_write"]) * DYNAMODB_WRU + u["read"] * DYNAMODB_RRU) * SECONDS_PER_MONTH
                    for table, u in units.items() if table not in provisioned)
    hourly = sum(wcu * DYNAMODB_WCU_HOUR + rcu * DYNAMODB_RCU_HOUR
                 for sizes in provisioned.values() for wcu, rcu in sizes.values())
    return on_demand, hourly * HOURS_PER_MONTH


# DynamoDB reserved capacity: a billing commitment, not a design change (nothing in the stacks): provisioned units of
# Standard-class tables and their indexes, bought in blocks of 100 WCU or 100 RCU for one or three years, partial
# upfront, billed whether used or not. "Reserved capacity can save you up to 77% over standard provisioned capacity
# rates" (three years: https://aws.amazon.com/dynamodb/reserved-capacity/); the one-year term's ~54% is as known
# (summaries of the pricing page), not read on the page. Priced beside target 3, never counted in it: the owner buys
# it once a steady load has been seen (docs/capacity.md).
RESERVED_CAPACITY_DISCOUNT = {"one year": 0.54, "three years": 0.77}
RESERVATION_BLOCK = 100


def reserved_capacity_cost(config: Any, orders_per_second: float, *, discount: float) -> float:
    """USD per month of prod's provisioned capacity with what its tables consume at this steady rate reserved
    (rounded down to whole blocks; the headroom auto scaling keeps above it, at the standard rate, is what a dip in
    the load may leave unused without wasting the reservation)."""
    units = dynamodb_units(orders_per_second, direct=direct_publish(config))
    hourly = 0.0
    for table, sizes in provisioned_capacity(config, units).items():
        used = units.get(table, dict.fromkeys(UNIT_KINDS, 0.0))
        consumed = {"table": (used["write"], used["read"]), "index": (used["index_write"], 0.0)}
        for part, (wcu, rcu) in sizes.items():
            reserved_wcu, reserved_rcu = (min(kept, units_used // RESERVATION_BLOCK * RESERVATION_BLOCK)
                                          for kept, units_used in zip((wcu, rcu), consumed[part], strict=True))
            hourly += ((wcu - discount * reserved_wcu) * DYNAMODB_WCU_HOUR
                       + (rcu - discount * reserved_rcu) * DYNAMODB_RCU_HOUR)
    return hourly * HOURS_PER_MONTH


def monthly_cost(config: Any, orders_per_second: float, *, direct: bool | None = None) -> dict[str, float]:
    """USD per month for one environment (a stacks.config.EnvironmentConfig) at a steady order rate. ``direct``:
    with direct publish on or off whatever the environment says (None: as it says, cdk.json ``directPublish``)."""
    direct = direct_publish(config) if direct is None else direct
    out: dict[str, float] = {}
    if config.broker_instance_type not in MSK_BROKER_HOUR:
        raise ValueError(f"no price for {config.broker_instance_type} in MSK_BROKER_HOUR (tools/capacity.py): add it "
                         "from the MSK pricing page (Express brokers also bill storage used and data written)")
    out["MSK brokers"] = config.broker_count * MSK_BROKER_HOUR[config.broker_instance_type] * HOURS_PER_MONTH
    out["MSK storage"] = config.broker_count * (config.broker_volume_gi_b or 0) * MSK_STORAGE_GB_MONTH
    ingest_kb_s = sum(records_per_second(t.name, orders_per_second) for t in catalog.TOPICS) * RECORD_KB
    # tiered storage holds one copy of what outlives the brokers' local retention: a month of it at this rate
    out["MSK tiered storage (a month's data)"] = ingest_kb_s * SECONDS_PER_MONTH / 1e6 * MSK_TIERED_GB_MONTH
    all_loads = loads(orders_per_second, direct=direct)
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
    requests = {name: per_order * orders_per_second for name, per_order in api_requests_per_order().items()}
    api = sum(requests.values())
    api_seconds = api * API_FUNCTION_MS / 1000
    if direct:  # the order POST publishes its commit and deletes its outbox items
        api_seconds += requests.get("order API POST", 0.0) * DIRECT_COMMIT_MS / 1000
    lambda_seconds = busy_seconds + produced * RELAY_MS_PER_RECORD / 1000 + api_seconds
    out["Lambda"] = (lambda_seconds * LAMBDA_MEMORY_GB * LAMBDA_GB_SECOND * SECONDS_PER_MONTH
                     + (invocations + produced / 10 + api) * LAMBDA_REQUEST * SECONDS_PER_MONTH)
    on_demand, provisioned = dynamodb_cost(config, orders_per_second, direct=direct)
    out["DynamoDB requests (on demand)"] = on_demand
    out["DynamoDB provisioned capacity"] = provisioned
    trail = [ld for ld in all_loads if ld.ref.startswith("audit.trail-")]
    trail_kb_s = sum(ld.records_per_second for ld in trail) * RECORD_KB
    trail_gb = trail_kb_s * (config.trail_retention_days + TTL_DELETION_LAG_DAYS) * 86400 / 1e6
    out["DynamoDB storage (the trail's retention)"] = trail_gb * DYNAMODB_GB_MONTH
    # Every event is an outbox item for its TTL (Settings.outbox_ttl_seconds), but those a function published
    # directly and deleted at once (cdk.json directPublish).
    outbox_kb_s = (produced - (sum(direct_events_per_second(orders_per_second).values()) if direct else 0.0)
                   ) * RECORD_KB
    outbox_gb = outbox_kb_s * (OUTBOX_TTL_DAYS + TTL_DELETION_LAG_DAYS) * 86400 / 1e6
    out["DynamoDB storage (the outbox's retention)"] = outbox_gb * DYNAMODB_GB_MONTH
    out["DynamoDB backups (point-in-time recovery of the trail and outbox)"] = (
        (trail_gb + outbox_gb) * DYNAMODB_PITR_GB_MONTH)
    # one object per trail invocation (a batch per partition and day: audit.logic.archive_batch)
    archive_puts = sum(ld.invocations_per_second(partitions[ld.topic]) for ld in trail if ld.records_per_second)
    out["S3 archive PUTs"] = archive_puts * S3_PUT * SECONDS_PER_MONTH
    out["S3 archive storage (a month's data)"] = trail_kb_s * SECONDS_PER_MONTH / 1e6 * S3_GB_MONTH
    out["VPC endpoints"] = (interface_endpoints(config, direct=direct) * len(config.availability_zones)
                            * ENDPOINT_AZ_HOUR * HOURS_PER_MONTH)
    out["CloudWatch Logs"] = ((invocations + api) * LOG_KB_PER_INVOCATION * SECONDS_PER_MONTH
                              / 1e6 * CLOUDWATCH_LOG_GB)
    out[CLOUDWATCH_METRICS_ITEM] = cloudwatch_metrics_cost(cloudwatch_metrics(config))
    return out


def interface_endpoints(config: Any, *, direct: bool | None = None) -> int:
    """Interface endpoints per AZ: X-Ray's; Lambda's and STS's where the mappings run on demand; SQS's and KMS's
    where the committers publish directly (stacks/network.py)."""
    direct = direct_publish(config) if direct is None else direct
    return 1 + (2 if config.on_demand_pollers else 0) + (DIRECT_ENDPOINTS if direct else 0)


def per_thousand_orders(cost: dict[str, float], orders_per_second: float) -> float:
    return sum(cost.values()) / (orders_per_second * SECONDS_PER_MONTH) * 1000


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


# --- issue 24: its targets, and the model's figures before it (frozen) ---------------------------------------------
# tools/capacity.py of 2026-12-04 (before issue 24's changes), as it printed at 2,000 orders/s: prod on 810 partitions,
# every handler but payment one record at a time, 5 WRU per event, the trail a 2 WRU transaction kept forever
# (a month's growth priced), dev on provisioned pollers. The issue quotes 0.128 per 1,000 orders and ~640 a month
# for dev (docs/capacity.md of its day, before the CloudWatch metrics were priced).
BEFORE_ISSUE_24: dict[str, dict[str, float]] = {
    "prod at 2000/s": {"MSK brokers": 1787, "MSK storage": 600, "MSK tiered storage (a month's data)": 6749,
                       "event pollers (EPUs)": 3511, "Lambda": 70144, "DynamoDB requests (on demand)": 520009,
                       "DynamoDB storage (the trail's retention)": 25754, "S3 archive PUTs": 25754,
                       "S3 archive storage (a month's data)": 2369, "VPC endpoints": 22, "CloudWatch Logs": 19079,
                       CLOUDWATCH_METRICS_ITEM: 2154},
    # dev: 2 t3.small brokers of 100 GiB, 5 EPUs (35 provisioned pollers, 2 groups), X-Ray's endpoint, 409 metrics
    "dev idle": {"MSK brokers": 66.58, "MSK storage": 20.0, "event pollers (EPUs)": 675.25, "VPC endpoints": 14.6,
                 CLOUDWATCH_METRICS_ITEM: 122.7},
}
BEFORE_PARTITIONS = 810
TARGET_PARTITIONS = 250
TARGET_PER_THOUSAND_ORDERS = 0.045
TARGET_DEV_IDLE = 150.0


def writes_per_order() -> list[tuple[str, float]]:
    """Write units per order (table, GSI and key store) by handler and API request, largest first."""
    out = []
    for ld in loads(1.0):
        done = measured(ld.ref)
        out.append((ld.ref, ld.records_per_second * (done.wru + done.gsi_wru + done.key_store_wru)))
    for name, per_order in api_requests_per_order().items():
        done = API_MEASURED[name]
        out.append((name, per_order * (done.wru + done.gsi_wru + done.key_store_wru)))
    return sorted(((ref, units) for ref, units in out if units), key=lambda pair: -pair[1])


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def main(argv: list[str]) -> None:
    rate = float(argv[0]) if argv else 2000.0
    environments = _environments()
    configs = {env: load_config(environments, env) for env in environments}
    prod = configs["prod"]
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
    print("order mix (records per order): " + ", ".join(f"{k} {v:.3g}" for k, v in RECORDS_PER_ORDER.items()))

    hops = saga_hops()
    print("\nThe saga as built (option B), stream relays, idle:\n\n| hop | p50 ms | p99 ms |\n|---|---|---|")
    for name, p50, p99 in hops[:-1]:
        print(f"| {name} | {p50:.0f} | {p99:.0f} |")
    for branch, branch_hops in saga_branches().items():
        for name, p50, p99 in branch_hops:
            print(f"| {branch}: {name} | {p50:.0f} | {p99:.0f} |")
    total, whole = saga_total(hops), saga_distribution()
    print(f"| POST /orders -> CONFIRMED, the hops' figures added (the later branch) | {total[0]:.0f} "
          f"| {total[1]:.0f} (every part at its p99 at once: an upper bound) |")
    print(f"| **POST /orders -> CONFIRMED**, end to end ({SAGA_SAMPLES:,} orders drawn, each part on its own) "
          f"| **{whole[0]:.0f}** | **{whole[1]:.0f}** |")

    direct_envs = {on: [env for env, config in configs.items() if direct_publish(config) == on] for on in (False, True)}
    print(f"\n| option | environments (cdk.json directPublish) | idle p50 / p99 ms end to end (hops added) "
          f"| meets p50 <= {SAGA_TARGET_MS[0]:.0f} / p99 <= {SAGA_TARGET_MS[1]:.0f} | at {rate:g} orders/s on "
          "prod's partitions (hops added) | meets |")
    print("|---|---|---|---|---|---|")
    for (name, flags), (_, *idle), (_, *busy) in zip(SAGA_OPTIONS.items(), saga_options(),
                                                     saga_options((rate, prod_partitions)), strict=True):
        where = "-" if flags.get("before_issue_24") else ", ".join(direct_envs[bool(flags.get("direct_publish"))]) \
            or "none"
        added = [saga_total(saga_hops(**flags, loaded=loaded)) for loaded in (None, (rate, prod_partitions))]
        print(f"| {name} | {where} | {idle[0]:.0f} / {idle[1]:.0f} ({added[0][0]:.0f} / {added[0][1]:.0f}) "
              f"| {_met(bool(idle[2]))} / {_met(bool(idle[3]))} | {busy[0]:.0f} / {busy[1]:.0f} "
              f"({added[1][0]:.0f} / {added[1][1]:.0f}) | {_met(bool(busy[2]))} / {_met(bool(busy[3]))} |")

    wait = provider_partition(rate, prod_partitions)
    print(f"\nthe authorisation's partitions (payment.order-payments on order-events) at {rate:g} orders/s: "
          f"{wait['records_per_partition_second']:.0f} records/s on each of {wait['partitions']:.0f}; an invocation "
          f"lasts {wait['lasts_ms']:.0f} ms and one is running {wait['busy']:.0%} of the time: a record waits "
          f"{wait['wait_p50_ms']:.0f} (p50) / {wait['wait_p99_ms']:.0f} (p99) ms")
    for direct in (False, True):
        p50_at, p99_at, ceiling = order_events_partitions_for_target(prod, rate, direct_publish=direct)
        label = "A + B" if direct else "B on relays"
        found = {"p50": p50_at, "p99": p99_at}
        print(f"order-events partitions for the loaded target with {label} (up to {ceiling:,}, MSK's recommended "
              "replicas on prod's brokers): " + ", ".join(
                  f"{q} {n:,}" if n else f"{q} none" for q, n in found.items()))
        if p50_at and direct:
            wide = prod.model_copy(update={"partitions": {**prod.partitions, "order-events": p50_at}})
            before_pollers, after_pollers = maximum_pollers(prod), maximum_pollers(wide)
            now_cost, wide_cost = monthly_cost(prod, rate, direct=True), monthly_cost(wide, rate, direct=True)
            print(f"  on {p50_at:,} order-events partitions: maximum pollers {sum(before_pollers.values())} -> "
                  f"{sum(after_pollers.values())}; EPUs USD {now_cost['event pollers (EPUs)']:,.0f} -> "
                  f"{wide_cost['event pollers (EPUs)']:,.0f} a month, Lambda {now_cost['Lambda']:,.0f} -> "
                  f"{wide_cost['Lambda']:,.0f}, CloudWatch metrics {now_cost[CLOUDWATCH_METRICS_ITEM]:,.0f} -> "
                  f"{wide_cost[CLOUDWATCH_METRICS_ITEM]:,.0f}; in all +USD "
                  f"{sum(wide_cost.values()) - sum(now_cost.values()):,.0f} a month")

    ingress, egress = client_throughput_mbps(rate)
    print(f"\nclients at {rate:g} orders/s: {ingress:,.1f} MB/s in, {egress:,.1f} MB/s out; prod's partitions")
    print("| Express size | brokers for ingress | for egress | for partition replicas | cluster (3 AZs) |")
    print("|---|---|---|---|---|")
    for size in EXPRESS_THROUGHPUT_MBPS:
        n = express_brokers_needed(size, rate, prod_partitions)
        print(f"| {size} | {n['ingress']} | {n['egress']} | {n['partitions']} | {n['brokers']} |")

    columns = [("dev", 0.0), ("dev", 100.0), ("staging", 0.0), ("staging", 100.0), ("prod", 0.0), ("prod", 100.0),
               ("prod", rate)]
    costs = [monthly_cost(configs[env], r) for env, r in columns]
    print("\n| USD / month | " + " | ".join(f"{env} at {r:g}/s" if r else f"{env} idle" for env, r in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for item in costs[0]:
        print(f"| {item} | " + " | ".join(f"{c[item]:,.0f}" for c in costs) + " |")
    print("| **total** | " + " | ".join(f"**{sum(c.values()):,.0f}**" for c in costs) + " |")
    print("\nbilled CloudWatch metrics: " + ", ".join(
        f"{env} {cloudwatch_metrics(config):,}" for env, config in configs.items()))
    print("directPublish: " + ", ".join(f"{env} {'on' if direct_publish(c) else 'off'}" for env, c in configs.items())
          + "; trailRetentionDays: " + ", ".join(f"{env} {c.trail_retention_days}" for env, c in configs.items()))

    units = dynamodb_units(rate, direct=direct_publish(prod))
    provisioned = provisioned_capacity(prod, units)
    print(f"\nDynamoDB at {rate:g} orders/s in prod (units/s consumed; provisioned: what auto scaling keeps at "
          f"{prod.dynamodb.target_utilisation or 0:.0%}, and cdk.json's maximum)\n")
    print("| table | WRU/s | GSI WRU/s | RRU/s | billing | WCU + index WCU / RCU kept "
          "| cdk.json maximum WCU + index / RCU |")
    print("|---|---|---|---|---|---|---|")
    key_store = prod.dynamodb.key_store_throughput()
    for table, used in sorted(units.items()):
        kept = provisioned.get(table)
        line = (f"| {table} | {used['write']:,.0f} | {used['index_write']:,.0f} | {used['read']:,.0f} | "
                f"{'provisioned' if kept else 'on demand'} | ")
        if kept and table == KEY_STORE and key_store is not None:  # no index
            line += (f"{kept['table'][0]:,.0f} / {kept['table'][1]:,.0f} | "
                     f"{key_store.max_wcu:,} / {key_store.max_rcu:,} |")
        elif kept:
            sized = prod.dynamodb.tables[table]
            line += (f"{kept['table'][0]:,.0f} + {kept['index'][0]:,.0f} / {kept['table'][1]:,.0f} | "
                     f"{sized.max_wcu:,} + {sized.index.max_wcu:,} / {sized.max_rcu:,} |")
        else:
            line += "- | - |"
        print(line)
    for shortfall in provisioned_shortfalls(prod, rate):
        print(f"  above cdk.json's maximum: {shortfall}")
    print("\nwrite units per order (table + GSI + key store), largest first: " + ", ".join(
        f"{ref} {units_:.1f}" for ref, units_ in writes_per_order()[:12]))

    before_cost = BEFORE_ISSUE_24["prod at 2000/s"]
    now = costs[-1]
    print(f"\n| USD / month, prod at {rate:g} orders/s | before issue 24 (frozen, at 2000/s) | now |\n|---|---|---|")
    for item in now:
        print(f"| {item} | {before_cost.get(item, 0):,.0f} | {now[item]:,.0f} |")
    print(f"| **total** | **{sum(before_cost.values()):,.0f}** | **{sum(now.values()):,.0f}** |")

    before_per_thousand = per_thousand_orders(before_cost, 2000.0)
    now_per_thousand = per_thousand_orders(now, rate)
    direct_cost = monthly_cost(prod, rate, direct=True)
    direct_prod = per_thousand_orders(direct_cost, rate)
    reserved = {term: per_thousand_orders({**now, "DynamoDB provisioned capacity": reserved_capacity_cost(
        prod, rate, discount=discount)}, rate) for term, discount in RESERVED_CAPACITY_DISCOUNT.items()}
    print("  with what prod's tables consume at this rate reserved (a billing commitment, not counted in target 3): "
          + ", ".join(f"{term} {value:.3f}" for term, value in reserved.items()))
    dev_before, dev_now = sum(BEFORE_ISSUE_24["dev idle"].values()), sum(costs[0].values())
    prod_idle = sum(costs[4].values())
    print(f"\nper 1,000 orders at {rate:g} orders/s (prod): USD {now_per_thousand:.3f} (before issue 24: "
          f"{before_per_thousand:.3f}; the issue quotes 0.128); with directPublish on in prod: {direct_prod:.3f} "
          f"(+USD {sum(direct_cost.values()) - sum(now.values()):,.0f} a month)")
    print(f"dev idle: USD {dev_now:,.0f} a month (before issue 24: {dev_before:,.0f}; the issue quotes ~640); "
          f"prod idle: USD {prod_idle:,.0f} (the provisioned tables' minimum capacity: "
          f"{costs[4]['DynamoDB provisioned capacity']:,.0f})")

    idle_ms = {name: (p50, p99) for name, p50, p99, *_ in saga_options()}
    busy_ms = {name: (p50, p99) for name, p50, p99, *_ in saga_options((rate, prod_partitions))}
    built, both = list(SAGA_OPTIONS)[1:]
    latency_now = "; ".join(f"{label} {idle_ms[o][0]:.0f} / {idle_ms[o][1]:.0f} idle, {busy_ms[o][0]:.0f} / "
                            f"{busy_ms[o][1]:.0f} loaded" for label, o in (("B on relays", built), ("A + B", both)))
    latency_met = "; ".join(
        f"{label}: {_met(idle_ms[o][0] <= SAGA_TARGET_MS[0] and idle_ms[o][1] <= SAGA_TARGET_MS[1])} idle, "
        f"{_met(busy_ms[o][0] <= SAGA_TARGET_MS[0] and busy_ms[o][1] <= SAGA_TARGET_MS[1])} loaded"
        for label, o in (("B", built), ("A + B", both)))
    gap = now_per_thousand - TARGET_PER_THOUSAND_ORDERS
    print("\n| target of issue 24 | before | now | met? |\n|---|---|---|---|")
    print(f"| 1. prod's partitions at 2,000 orders/s <= {TARGET_PARTITIONS} | {BEFORE_PARTITIONS} "
          f"| {sum(prod_partitions.values())} | {_met(sum(prod_partitions.values()) <= TARGET_PARTITIONS)} |")
    before_whole = saga_distribution(before_issue_24=True)
    print(f"| 2. POST -> CONFIRMED p50 <= {SAGA_TARGET_MS[0]:.0f} / p99 <= {SAGA_TARGET_MS[1]:.0f} ms, end to end "
          f"| {SAGA_BEFORE_ISSUE_24_MS[0]:.0f} / {SAGA_BEFORE_ISSUE_24_MS[1]:.0f} idle, hops added (the issue's); "
          f"end to end {before_whole[0]:.0f} / {before_whole[1]:.0f} | {latency_now} | {latency_met} |")
    over = f" (over by {gap:.3f}, {gap / TARGET_PER_THOUSAND_ORDERS:.0%})" if gap > 0 else ""
    print(f"| 3. USD per 1,000 orders at 2,000 orders/s <= {TARGET_PER_THOUSAND_ORDERS} | {before_per_thousand:.3f} "
          f"| {now_per_thousand:.3f} (a one-year reservation of what the tables consume: {reserved['one year']:.3f}) "
          f"| {_met(gap <= 0)}{over} |")
    print(f"| 4. dev idle USD / month <= {TARGET_DEV_IDLE:.0f} | {dev_before:,.0f} | {dev_now:,.0f} "
          f"| {_met(dev_now <= TARGET_DEV_IDLE)} |")


def _environments() -> dict[str, Any]:
    return dict(json.loads((Path(__file__).resolve().parents[1] / "cdk.json").read_text())["context"]["environments"])


def first_bottleneck() -> str:
    prod = load_config(_environments(), "prod")
    limit, handler = sustained_orders_per_second({t.name: prod.partition_count(t.name) for t in catalog.TOPICS})[0]
    return f"{handler.ref} on {handler.topic} at {limit:,.0f} orders/s"


if __name__ == "__main__":
    main(sys.argv[1:])
