"""The audit trail of every event, its causal view, and real-time analytics.

Analytics (complex event processing; the arithmetic is in analytics.py, the items in store.py):
- tumbling 1-minute windows of event time: orders placed, confirmed, cancelled by reason, revenue
  per currency, payment attempts and failures, and the time from OrderCreated to OrderConfirmed
  (joined by orderId, whichever arrives first) as a histogram; each event counted once per eventId;
- FraudSuspected when a customer has ``fraud_declines`` declined payments within
  ``fraud_window_minutes`` (matched on every decline: a count only grows, so the outcome does not
  depend on the order of arrival);
- PaymentFailureSpike and StockOutPredicted are matched over *closed* windows only (by the
  ``close_windows`` schedule), whose figures can no longer change: a failure rate or a stock level
  can move either way while late events still arrive, so matching them earlier would depend on
  arrival order.
Every alert has an id derived from what it is about, and is written with its event in one
transaction, conditioned on that id: a duplicate, a redelivery or a replay raises nothing new.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from shopstream import catalog, pages
from shopstream.config import get_settings
from shopstream.envelope import EventEnvelope, event_from_event, service_source
from shopstream.events import (
    FraudSuspected,
    InventoryAdjusted,
    InventoryReleased,
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    PaymentFailed,
    PaymentFailureSpike,
    PaymentProcessed,
    StockOutPredicted,
)
from shopstream.inbound import Handled, InboundEvent, PoisonRecord
from shopstream.observability import add_metric, logger
from shopstream.request import Caller, NotFound

from . import analytics, store
from .analytics import Tally
from .settings import settings

# .models (the API's response models: 2 ms on a consumer's or the schedule's init) is imported by ``live``, which
# only the API serves: the consumers and the schedule load this module and never use the models.

SERVICE = "audit"
ALERT_NAMESPACE = uuid.UUID("6f1c1f43-3a43-4c55-9d36-7d3f0f1f5e11")


def on_any_event(event: InboundEvent) -> None:
    store.record(event.envelope.to_wire(), event.topic, event.partition, event.offset,  # False: recorded before
                 trail_expiry(event.envelope.timestamp))


def trail_expiry(at: datetime) -> int:
    """When a trail item of an event at ``at`` (event time) expires: DynamoDB's TTL, epoch seconds."""
    return int((at + timedelta(days=settings().trail_retention_days)).timestamp())


def trail_since() -> str:
    """The oldest event time the trail still answers for (its retention), as the trail's sort keys begin."""
    return iso(analytics.now() - timedelta(days=settings().trail_retention_days))


def archive_batch(handled: list[Handled]) -> None:
    """After a trail handler's batch: its events in S3, one object per partition and day of event time
    (not one per event: ~39,000 PUTs/s at 2,000 orders/s, docs/capacity.md). Should a put fail, the
    invocation fails and the batch comes again: the trail is written once, the archive at least once."""
    bucket = get_settings().audit_archive_bucket
    if not bucket:
        return
    groups: dict[tuple[str, int, str], list[tuple[int, dict[str, Any]]]] = {}
    for event in (h.event for h in handled):  # in offset order (EventConsumer)
        envelope = event.envelope.to_wire()
        groups.setdefault((event.topic, event.partition, envelope["timestamp"][:10]), []).append(
            (event.offset, envelope))
    for (topic, partition, _), records in groups.items():
        store.archive(bucket, topic, partition, records)


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


def trail(caller: Caller, correlation_id: str, limit: int,
          cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the trail (causes before effects within it) and the cursor to the next one. The trail holds
    the last ``trail_retention_days`` of events; older ones are only in the archive (S3, by topic and day)."""
    events, next_cursor = store.trail_page(correlation_id, limit, cursor, trail_since())
    if not events and cursor is None:
        raise NotFound(f"no events with this correlation id in the last {settings().trail_retention_days} days "
                       "(older events are in the audit archive)")
    return causal_order(events), next_cursor


# --- analytics: windows ----------------------------------------------------------------------
def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _lateness() -> timedelta:
    return timedelta(seconds=settings().analytics_lateness_seconds)


# A request still on its way to DynamoDB when its function was stopped is applied within this (assumed: DynamoDB
# answers in milliseconds; the margin is generous).
IN_FLIGHT_MARGIN = timedelta(seconds=60)


def _final_after() -> timedelta:
    """How long after its end a window's figures are final. A window takes events for its lateness, but an event
    taken just before is counted at its batch's end (``count_batch``), in the same invocation: no later than the
    analytics consumers' timeout, and a request still in flight, after the window stopped taking events."""
    longest = max(h.timeout_seconds for h in catalog.service(SERVICE).handlers if h.name.startswith("analytics-"))
    return _lateness() + timedelta(seconds=longest) + IN_FLIGHT_MARGIN


def _ttl(at: datetime) -> int:
    return int((analytics.window_start(at) + timedelta(hours=settings().analytics_retention_hours)).timestamp())


def _open(at: datetime) -> bool:
    return analytics.is_open(at, analytics.now(), _lateness())


def _counting_shard(event: InboundEvent) -> str:
    """Which of its window's counters items the event's batch adds to: its source partition's."""
    return f"{event.topic}#{event.partition}"


def _tally(event: InboundEvent, counters: dict[str, int], metric_values: dict[str, int],
           products: dict[str, int] | None = None) -> Tally:
    """What the event adds to its window, counted with the batch's (``count_batch``). An event later than its
    window's lateness is counted as late (``lateEvents`` in its window, ``AnalyticsLateEvents``), not in the
    figures."""
    at = event.envelope.timestamp
    shard = _counting_shard(event)
    fact = f"FACT#{event.envelope.event_id}"
    if not _open(at):
        return Tally(analytics.minute_key(at), fact, shard, {analytics.LATE_COUNTER: 1}, _ttl(at), late=True)
    return Tally(analytics.minute_key(at), fact, shard, counters, _ttl(at), products or {}, metric_values)


def count_batch(handled: list[Handled]) -> None:
    """After an analytics handler's batch: each event counted in its window once, and only then its CloudWatch
    metrics emitted. The window's fact (``FACT#<eventId>``, ``JOIN#<orderId>``) guards both, so a redelivery or a
    replay adds to neither (no idempotency record needed); should the write fail, the invocation fails and the
    batch comes again (its handlers' writes are idempotent, the facts keep the counts once)."""
    tallies = [tally for h in handled for tally in cast("list[Tally]", h.outcome or [])]

    def emit(counted: list[Tally]) -> None:  # as each transaction commits: a later failure loses none of these
        for tally in counted:
            if tally.late:
                add_metric(name="AnalyticsLateEvents", unit=MetricUnit.Count, value=1)
                logger().info("event too late for its window; not counted", extra={"window": tally.minute})
            for name, value in tally.metrics.items():
                add_metric(name=name, unit=MetricUnit.Count, value=value)

    store.count_each_once(tallies, emit)


def _join(event: InboundEvent, order_id: str, side: str) -> Tally | None:
    """OrderCreated -> OrderConfirmed, counted in the confirmation's window once both are known."""
    at = event.envelope.timestamp
    sides = store.record_join_side(order_id, side, iso(at), _ttl(at))
    if "CREATED" not in sides or "CONFIRMED" not in sides:
        return None
    created, confirmed = _parse(sides["CREATED"]), _parse(sides["CONFIRMED"])
    if not _open(confirmed):
        return None
    milliseconds = max(0.0, (confirmed - created).total_seconds() * 1000)
    bucket = analytics.latency_bucket(milliseconds)
    return Tally(analytics.minute_key(confirmed), f"JOIN#{order_id}", _counting_shard(event),
                 {f"{analytics.LATENCY_PREFIX}{bucket}": 1}, _ttl(confirmed))


def on_order_metrics(event: InboundEvent) -> list[Tally]:
    """The event's count for its window and CloudWatch, and the created -> confirmed join (its side written now,
    the counts with the batch's)."""
    match event.data:
        case OrderCreated(order_id=order_id):
            counters, side = analytics.order_counters("OrderCreated"), "CREATED"
            metric_values = {"OrdersPlaced": 1}
        case OrderConfirmed(order_id=order_id, total=total):
            counters = analytics.order_counters("OrderConfirmed", currency=total.currency, amount=total.amount)
            side, metric_values = "CONFIRMED", {"OrdersConfirmed": 1, f"Revenue{total.currency}": total.amount}
        case OrderCancelled(order_id=order_id, reason=reason):
            counters, side = analytics.order_counters("OrderCancelled", reason=reason), ""
            metric_values = {"OrdersCancelled": 1}
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    tallies = [_tally(event, counters, metric_values)]
    if side:  # also for a duplicate: an earlier delivery may have stopped before its join
        joined = _join(event, order_id, side)
        if joined is not None:
            tallies.append(joined)
    return tallies


def on_payment_metrics(event: InboundEvent) -> list[Tally]:
    match event.data:
        case PaymentProcessed() | PaymentFailed():
            failed = isinstance(event.data, PaymentFailed)
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    if isinstance(event.data, PaymentFailed) and _open(event.envelope.timestamp):
        _match_fraud(event, event.data)  # idempotent by itself (a decline is a write-once fact)
    return [_tally(event, analytics.payment_counters(failed), {"PaymentAttempts": 1, "PaymentsFailed": int(failed)})]


def on_inventory_metrics(event: InboundEvent) -> list[Tally]:
    """Available stock (newest version wins) and units reserved per product and window."""
    reserved: dict[str, int] = {}
    match event.data:
        case InventoryAdjusted(level=level):
            levels = [level]
        case InventoryReserved(levels=levels, lines=lines):
            for line in lines:
                reserved[line.product_id] = reserved.get(line.product_id, 0) + line.quantity
        case InventoryReleased(levels=levels):
            pass
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    for stock in levels:
        store.apply_stock(stock.product_id, stock.shard, stock.version, stock.available)
    return [_tally(event, {"reservedUnits": sum(reserved.values())}, {}, reserved)] if reserved else []


# --- analytics: patterns ---------------------------------------------------------------------
def alert_id(kind: str, *about: str) -> str:
    return f"{kind}-{uuid.uuid5(ALERT_NAMESPACE, '/'.join((kind, *about))).hex[:24]}"


def _alert_envelope(kind: str, data: BaseModel, cause: EventEnvelope | None, alert: str) -> EventEnvelope:
    event_id = str(uuid.uuid5(ALERT_NAMESPACE, f"event/{alert}"))
    if cause is not None:
        return event_from_event(cause, event_type=kind, data=data, service=SERVICE).model_copy(
            update={"event_id": event_id})
    return EventEnvelope(event_id=event_id, event_type=kind, source=service_source(SERVICE),
                         correlation_id=f"analytics-{alert}", data=data.model_dump(mode="json", by_alias=True))


def _raise(kind: str, alert: str, about: str, detected_at: datetime, data: BaseModel,
           cause: EventEnvelope | None = None) -> bool:
    opened = timedelta(minutes=settings().alert_open_minutes)
    raised = store.raise_alert({"alertId": alert, "type": kind, "about": about, "detectedAt": iso(detected_at),
                                "openUntil": iso(detected_at + opened), "ttl": _ttl(detected_at + opened),
                                "summary": data.model_dump(mode="json", by_alias=True)},
                               _alert_envelope(kind, data, cause, alert))
    if raised:
        logger().warning("analytics alert raised", extra={"alertId": alert, "type": kind, "about": about})
    return raised


def _match_fraud(event: InboundEvent, data: PaymentFailed) -> None:
    s = settings()
    within = timedelta(minutes=s.fraud_window_minutes)
    at = event.envelope.timestamp
    store.record_decline(data.user_id, iso(at), event.envelope.event_id, data.payment_id, _ttl(at + within))
    declines = [(_parse(t), payment_id)
                for t, payment_id in store.declines_between(data.user_id, iso(at - within), iso(at + within))]
    # A new decline can complete the pattern at itself or at any later decline less than `within` after it.
    seen: set[datetime] = set()
    for trigger, recent in analytics.fraud_triggers(declines, within=within, at_least=s.fraud_declines,
                                                    among=(at, at + within)):
        bucket = analytics.fraud_bucket(trigger, within)
        if bucket in seen:
            continue
        seen.add(bucket)
        alert = alert_id("FraudSuspected", data.user_id, iso(bucket))
        _raise("FraudSuspected", alert, data.user_id, trigger, FraudSuspected(
            alert_id=alert, user_id=data.user_id, declines=len(recent), window_minutes=s.fraud_window_minutes,
            first_decline_at=recent[0][0], last_decline_at=trigger,
            payment_ids=sorted({payment_id for _, payment_id in recent})[:50]), cause=event.envelope)


def close_windows(max_windows: int = 60) -> int:
    """Match the patterns over windows that closed since the last run (the schedule, every minute), at most
    ``max_windows`` of them a run, from the oldest: after an outage the runs catch up an hour at a time, skipping
    none.

    Closed windows cannot change any more (``_final_after``), so the outcome is the same whenever and however
    often this runs; the cursor only saves work."""
    s = settings()
    last = analytics.last_closed_window(analytics.now(), _final_after())
    cursor, version = store.closed_up_to()
    if cursor:
        first = analytics.parse_minute(cursor) + analytics.WINDOW
    else:
        first = last - (s.spike_windows - 1) * analytics.WINDOW
    last = min(last, first + (max_windows - 1) * analytics.WINDOW)
    if first > last:
        return 0
    closing = analytics.minutes_between(first, last)
    context = analytics.minutes_between(first - s.spike_windows * analytics.WINDOW, last)
    totals = store.windows([analytics.minute_key(m) for m in context])
    views = {m: analytics.window_view(m, totals.get(analytics.minute_key(m)), closed=True) for m in context}
    for window in closing:
        _match_spike(window, views)
        _predict_stock_outs(window)
    store.close_up_to(analytics.minute_key(last), version)
    return len(closing)


def _match_spike(window: datetime, views: dict[datetime, dict[str, Any]]) -> None:
    s = settings()
    run = [views[window - k * analytics.WINDOW] for k in range(s.spike_windows, -1, -1)]
    if not analytics.spike_begins(run, rate=s.spike_failure_rate, min_attempts=s.spike_min_attempts):
        return
    spike = run[1:]
    alert = alert_id("PaymentFailureSpike", iso(spike[0]["start"]))
    _raise("PaymentFailureSpike", alert, "payments", window + analytics.WINDOW, PaymentFailureSpike(
        alert_id=alert, threshold=s.spike_failure_rate, window_starts=[v["start"] for v in spike],
        failure_rates=[v["paymentFailureRate"] for v in spike], attempts=[v["paymentAttempts"] for v in spike]))


def _predict_stock_outs(window: datetime) -> None:
    s = settings()
    lookback = analytics.minutes_between(window - (s.stockout_lookback_minutes - 1) * analytics.WINDOW, window)
    for product_id in store.products_in(analytics.minute_key(window)):
        units = store.units_of(product_id, [analytics.minute_key(m) for m in lookback])
        rate = units / s.stockout_lookback_minutes
        available = store.available_stock(product_id)
        left = analytics.minutes_to_stock_out(available or 0, units, s.stockout_lookback_minutes)
        if left is None or left >= s.stockout_horizon_minutes:
            continue
        hour = window.replace(minute=0)
        alert = alert_id("StockOutPredicted", product_id, iso(hour))
        _raise("StockOutPredicted", alert, product_id, window + analytics.WINDOW, StockOutPredicted(
            alert_id=alert, product_id=product_id, available=available or 0, units_per_minute=round(rate, 3),
            minutes_to_stock_out=left, lookback_minutes=s.stockout_lookback_minutes, window_start=window))


def live(minutes: int) -> dict[str, Any]:
    """The last ``minutes`` windows (oldest first, empty ones included) and the alerts still open."""
    at = analytics.now()
    last = analytics.window_start(at)
    starts = analytics.minutes_between(last - (minutes - 1) * analytics.WINDOW, last)
    totals = store.windows([analytics.minute_key(m) for m in starts])
    windows = [analytics.window_view(m, totals.get(analytics.minute_key(m)),
                                     closed=not analytics.is_open(m, at, _lateness())) for m in starts]
    alerts = sorted((a for a in store.alerts() if a["openUntil"] > iso(at)), key=lambda a: a["detectedAt"],
                    reverse=True)
    from .models import LIVE_ALERTS_BYTES  # the API's bound

    alerts, omitted = pages.first_within(alerts, LIVE_ALERTS_BYTES)
    return {"generatedAt": at, "windowSeconds": int(analytics.WINDOW.total_seconds()),
            "latenessSeconds": settings().analytics_lateness_seconds, "windows": windows, "alerts": alerts,
            "alertsOmitted": omitted}
