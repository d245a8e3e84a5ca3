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

import math
import sys
from dataclasses import dataclass

from shopstream import catalog

UTILISATION = 0.7  # headroom: a partition busy 70% of the time at the design rate
RUNTIME_MS = 0.065  # consumer runtime per record (bench section 3: 62.9 µs)
DYNAMODB_MS = 6.0  # one DynamoDB call from Lambda in the same region (assumed p50; transactions included)
S3_PUT_MS = 7.0  # one S3 PutObject (assumed)
SES_MS = 30.0  # one SES SendEmail (assumed)
PROVIDER_MS = 300.0  # a card network's charge (assumed)

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
    "audit.trail-*": (3.0, 1.0), "audit.analytics-orders": (2.0, 0.0), "audit.analytics-payments": (1.0, 0.0),
    "cart.order-checkout": (1.0, 0.0), "catalog.stock-availability": (3.0, 0.0),
    "inventory.order-reservations": (2.8, 0.0), "inventory.payment-outcomes": (2.5, 0.0),
    "notification.order-notices": (2.0, 0.0), "notification.payment-notices": (2.0, 0.0),
    "order.inventory-outcomes": (3.31, 0.0), "order.payment-outcomes": (2.0, 0.0),
    "order.shipping-outcomes": (4.0, 0.0), "payment.inventory-outcomes": (4.96, 0.0),
    "payment.order-payments": (1.8, 0.0), "shipping.order-fulfilment": (3.6, 0.0),
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


def main(argv: list[str]) -> None:
    rate = float(argv[0]) if argv else 2000.0
    print(f"| topic | records/s at {rate:g} orders/s | partitions needed | busiest handler | ms/record |")
    print("|---|---|---|---|---|")
    for topic_name, (needed, load) in partitions_needed(rate).items():
        print(f"| {topic_name} | {records_per_second(topic_name, rate):,.0f} | {needed} | {load.ref} "
              f"| {load.ms_per_record:.0f} (concurrency {load.concurrency}) |")
    concurrent = sum(load.busy_partitions for load in loads(rate))
    print(f"\nconcurrent invocations at {rate:g} orders/s: {concurrent:,.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
