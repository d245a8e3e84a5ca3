"""The audit trail of every event, its causal view, and real-time business metrics."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from shopstream.api import Caller, NotFound
from shopstream.config import get_settings
from shopstream.consumer import InboundEvent, PoisonRecord
from shopstream.events import OrderCancelled, OrderConfirmed, OrderCreated, PaymentFailed, PaymentProcessed
from shopstream.observability import metrics
from shopstream.transaction import UnitOfWork, try_commit

from . import store


def on_any_event(event: InboundEvent) -> None:
    envelope = event.envelope.to_wire()
    uow = UnitOfWork()
    store.record(uow, envelope, event.topic, event.partition, event.offset)
    try_commit(uow)  # recorded before; the trail is immutable
    bucket = get_settings().audit_archive_bucket
    if bucket:
        store.archive(bucket, event.topic, envelope)


def causal_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Causes before their effects (depth first), siblings by time."""
    by_id = {e["eventId"]: e for e in events}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for e in events:
        parent = e.get("causationId") if e.get("causationId") in by_id else None
        children.setdefault(parent, []).append(e)
    ordered: list[dict[str, Any]] = []

    def visit(parent: str | None) -> None:
        for child in sorted(children.get(parent, []), key=lambda e: (e["timestamp"], e["eventId"])):
            ordered.append(child)
            visit(child["eventId"])

    visit(None)
    return ordered


def trail(caller: Caller, correlation_id: str) -> list[dict[str, Any]]:
    events = store.trail(correlation_id)
    if not events:
        raise NotFound("no events with this correlation id")
    return causal_order(events)


def on_order_metrics(event: InboundEvent) -> None:
    """Per-minute sums come from CloudWatch's aggregation of these EMF values."""
    m = metrics()
    match event.data:
        case OrderCreated():
            m.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
        case OrderConfirmed(total=total):
            m.add_metric(name="OrdersConfirmed", unit=MetricUnit.Count, value=1)
            m.add_metric(name=f"Revenue{total.currency}", unit=MetricUnit.Count, value=total.amount)
        case OrderCancelled():
            m.add_metric(name="OrdersCancelled", unit=MetricUnit.Count, value=1)
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def on_payment_metrics(event: InboundEvent) -> None:
    match event.data:
        case PaymentProcessed() | PaymentFailed():
            m = metrics()
            m.add_metric(name="PaymentAttempts", unit=MetricUnit.Count, value=1)
            m.add_metric(name="PaymentsFailed", unit=MetricUnit.Count, value=int(isinstance(event.data, PaymentFailed)))
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
