from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from shopstream.envelope import WireModel

# A page of GET /audit/{correlationId}: at most 500 events, and never more than 1 MB of them
# (store.TRAIL_PAGE_BYTES, where the response's bound is worked out).
TRAIL_PAGE_DEFAULT = 100
TRAIL_PAGE_MAX = 500


class AuditTrail(WireModel):
    correlation_id: str
    events: list[dict[str, Any]]  # pages in event time; within a page, causes before their effects
    next_cursor: str | None = Field(default=None, description="The cursor to the next page; absent on the last")


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


# GET /analytics/live: at most 360 windows, each under 8.2 KB of Lambda response even with revenue in all
# 156 ISO-4217 currencies and every number at DynamoDB's 38 digits (2.95 MB), and the newest open alerts
# within 500 KB of JSON (at most 1 MB once Lambda's response escapes it): under 4 MB of Lambda's 6 MB
# (tests/integration/test_list_pages.py measures the window).
LIVE_MINUTES_MAX = 360
LIVE_ALERTS_BYTES = 500_000


class AnalyticsLive(WireModel):
    generated_at: datetime
    window_seconds: int
    lateness_seconds: int
    windows: list[WindowView]
    alerts: list[AlertView]  # the newest open alerts, within LIVE_ALERTS_BYTES
    alerts_omitted: int = Field(default=0, description="Older open alerts left out to keep the response bounded")
