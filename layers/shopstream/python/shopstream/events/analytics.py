"""The events of analytics-events (version v1)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import MAX_LINES, Id, StockCount


class FraudSuspected(WireModel):
    """A customer had ``declines`` (≥ 3) declined payments within ``window_minutes`` of event time."""

    alert_id: Id
    user_id: Id
    declines: int = Field(ge=1, le=10_000)
    window_minutes: int = Field(ge=1, le=1440)
    first_decline_at: datetime
    last_decline_at: datetime
    payment_ids: list[Id] = Field(max_length=MAX_LINES)


class StockOutPredicted(WireModel):
    """At the recent rate of reservations, the product's available stock runs out within the horizon."""

    alert_id: Id
    product_id: Id
    available: StockCount
    units_per_minute: float = Field(ge=0, le=10**12)
    minutes_to_stock_out: int = Field(ge=0, le=10**6)
    lookback_minutes: int = Field(ge=1, le=1440)
    window_start: datetime


class PaymentFailureSpike(WireModel):
    """The payment failure rate was over ``threshold`` in each of consecutive closed 1-minute windows."""

    alert_id: Id
    threshold: float = Field(ge=0, le=1)
    window_starts: list[datetime] = Field(min_length=1, max_length=60)
    failure_rates: list[float] = Field(min_length=1, max_length=60)
    attempts: list[int] = Field(min_length=1, max_length=60)
