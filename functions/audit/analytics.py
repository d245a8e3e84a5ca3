"""Window and pattern arithmetic of the analytics (pure: no DynamoDB, no clock of its own).

Windows are tumbling, one minute long, in event time (the envelope's timestamp), named by their
start: ``2026-11-29T10:31``. A window is *open* until ``lateness`` after its end by the processing
clock (``now()``); an event whose window has closed is not counted (``late``). Counters are added
once per eventId (store.py writes a fact keyed by the eventId in the same transaction), so
duplicates, redeliveries and replays never count twice, and sums do not depend on arrival order.

The time from OrderCreated to OrderConfirmed is kept as a histogram of logarithmic buckets (each
5% wider than the one before), so a window's p50/p95 are exact to within 5% whatever the volume.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

WINDOW = timedelta(minutes=1)
MINUTE_FORMAT = "%Y-%m-%dT%H:%M"
LATENCY_PREFIX = "lat:"
LATE_COUNTER = "lateEvents"  # events that arrived after their window closed (not in its figures)
LATENCY_GROWTH = 1.05  # bucket i holds latencies in (1.05^(i-1), 1.05^i] milliseconds


@dataclass(frozen=True)
class Tally:
    """What one event adds to one window, to be counted once under ``fact`` (``FACT#<eventId>``, ``JOIN#<orderId>``).
    ``shard``: the partition the event came from (``<topic>#<partition>``): each keeps its own counters item per
    window, so the partitions' batches never write the same item. ``late``: its window had closed when it came
    (``counters`` is then only the late counter). ``metrics``: the CloudWatch values it emits once counted."""

    minute: str
    fact: str
    shard: str
    counters: Mapping[str, int]
    ttl: int
    products: Mapping[str, int] = field(default_factory=dict)
    metrics: Mapping[str, int] = field(default_factory=dict)
    late: bool = False


def summed(tallies: Iterable[Tally]) -> tuple[dict[str, int], dict[str, int]]:
    """The counters and the units per product of ``tallies`` added up."""
    counters: dict[str, int] = {}
    products: dict[str, int] = {}
    for tally in tallies:
        for name, value in tally.counters.items():
            counters[name] = counters.get(name, 0) + value
        for product_id, units in tally.products.items():
            products[product_id] = products.get(product_id, 0) + units
    return counters, products


def now() -> datetime:
    """The processing clock (tests replace it)."""
    return datetime.now(UTC)


def window_start(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(second=0, microsecond=0)


def minute_key(at: datetime) -> str:
    return window_start(at).strftime(MINUTE_FORMAT)


def parse_minute(key: str) -> datetime:
    return datetime.strptime(key, MINUTE_FORMAT).replace(tzinfo=UTC)


def is_open(event_time: datetime, at: datetime, lateness: timedelta) -> bool:
    """Whether the event's window still takes events at processing time ``at``."""
    return at <= window_start(event_time) + WINDOW + lateness


def last_closed_window(at: datetime, lateness: timedelta) -> datetime:
    """The newest window that can take no more events at ``at``."""
    return window_start(at - lateness - WINDOW - timedelta(microseconds=1))


def minutes_between(first: datetime, last: datetime) -> list[datetime]:
    out, current = [], window_start(first)
    while current <= last:
        out.append(current)
        current += WINDOW
    return out


# --- latency histogram ------------------------------------------------------------------------
def latency_bucket(milliseconds: float) -> int:
    if milliseconds <= 1:
        return 0
    return math.ceil(math.log(milliseconds) / math.log(LATENCY_GROWTH) - 1e-9)


def bucket_upper_bound(index: int) -> int:
    return round(LATENCY_GROWTH ** index)


def percentile(histogram: Mapping[int, int], p: float) -> int | None:
    """Nearest-rank percentile of a bucketed histogram: the upper bound of the bucket holding it."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bucket_upper_bound(index)
    return bucket_upper_bound(max(histogram))


# --- what an event adds to its window ---------------------------------------------------------
def order_counters(event_type: str, *, reason: str | None = None, currency: str | None = None,
                   amount: int = 0) -> dict[str, int]:
    match event_type:
        case "OrderCreated":
            return {"placed": 1}
        case "OrderConfirmed":
            return {"confirmed": 1, f"revenue:{currency}": amount}
        case "OrderCancelled":
            return {f"cancelled:{reason}": 1}
    raise ValueError(event_type)


def payment_counters(failed: bool) -> dict[str, int]:
    return {"payments": 1, "paymentsFailed": int(failed)}


def window_view(start: datetime, totals: Mapping[str, Any] | None, *, closed: bool) -> dict[str, Any]:
    """One window as the API shows it."""
    totals = totals or {}
    histogram = {int(k.removeprefix(LATENCY_PREFIX)): int(v) for k, v in totals.items()
                 if k.startswith(LATENCY_PREFIX)}
    attempts, failed = int(totals.get("payments", 0)), int(totals.get("paymentsFailed", 0))
    return {
        "start": start, "end": start + WINDOW, "closed": closed,
        "ordersPlaced": int(totals.get("placed", 0)),
        "ordersConfirmed": int(totals.get("confirmed", 0)),
        "ordersCancelled": {k.removeprefix("cancelled:"): int(v) for k, v in sorted(totals.items())
                            if k.startswith("cancelled:")},
        "revenue": {k.removeprefix("revenue:"): int(v) for k, v in sorted(totals.items()) if k.startswith("revenue:")},
        "paymentAttempts": attempts,
        "paymentsFailed": failed,
        "paymentFailureRate": round(failed / attempts, 4) if attempts else None,
        "confirmLatencyMs": {"count": sum(histogram.values()), "p50": percentile(histogram, 50),
                             "p95": percentile(histogram, 95)},
        "lateEvents": int(totals.get(LATE_COUNTER, 0)),
    }


# --- patterns -----------------------------------------------------------------------------------
def fraud_triggers(declines: Iterable[tuple[datetime, str]], *, within: timedelta, at_least: int,
                   among: tuple[datetime, datetime]) -> list[tuple[datetime, list[tuple[datetime, str]]]]:
    """Declines (time, paymentId) at which a customer has ``at_least`` declines within ``within``
    (the decline itself and those less than ``within`` before it), for declines in ``among``."""
    ordered = sorted(set(declines))
    triggers = []
    for index, (at, _) in enumerate(ordered):
        if not among[0] <= at <= among[1]:
            continue
        recent = [d for d in ordered[: index + 1] if at - d[0] < within]
        if len(recent) >= at_least:
            triggers.append((at, recent))
    return triggers


def fraud_bucket(at: datetime, within: timedelta) -> datetime:
    """Alerts for one customer are one per bucket of ``within`` (the trigger's), not one per decline."""
    seconds = int(within.total_seconds())
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def over_threshold(view: Mapping[str, Any], *, rate: float, min_attempts: int) -> bool:
    attempts = view["paymentAttempts"]
    return attempts >= min_attempts and view["paymentsFailed"] / attempts > rate


def spike_begins(views: Sequence[Mapping[str, Any]], *, rate: float, min_attempts: int) -> bool:
    """``views``: the window before a run, then the run of closed windows (oldest first). True when
    every window of the run is over the threshold and the one before is not: a spike longer than the
    run is one spike, reported once, by the run it started with."""
    before, *run = views
    return bool(run) and all(over_threshold(v, rate=rate, min_attempts=min_attempts) for v in run) \
        and not over_threshold(before, rate=rate, min_attempts=min_attempts)


def minutes_to_stock_out(available: int, units: int, lookback_minutes: int) -> int | None:
    """Whole minutes until ``available`` runs out at ``units`` per ``lookback_minutes`` (integer arithmetic)."""
    if available <= 0 or units <= 0:
        return None
    return available * lookback_minutes // units
