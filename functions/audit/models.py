from __future__ import annotations

from datetime import datetime
from typing import Any

from shopstream.envelope import WireModel


class AuditTrail(WireModel):
    correlation_id: str
    events: list[dict[str, Any]]


class LatencyView(WireModel):
    """Time from OrderCreated to OrderConfirmed of the orders confirmed in the window (milliseconds,
    each percentile within 5% of the true value)."""

    count: int
    p50: int | None
    p95: int | None


class WindowView(WireModel):
    start: datetime
    end: datetime
    closed: bool  # no event can be added any more (its lateness allowance has passed)
    orders_placed: int
    orders_confirmed: int
    orders_cancelled: dict[str, int]  # by reason
    revenue: dict[str, int]  # minor units, by currency
    payment_attempts: int
    payments_failed: int
    payment_failure_rate: float | None
    confirm_latency_ms: LatencyView
    late_events: int  # arrived after the window closed: not in the figures above


class AlertView(WireModel):
    alert_id: str
    type: str
    about: str
    detected_at: str
    open_until: str
    summary: dict[str, Any]
    event: dict[str, Any]


class AnalyticsLive(WireModel):
    generated_at: datetime
    window_seconds: int
    lateness_seconds: int
    windows: list[WindowView]
    alerts: list[AlertView]
