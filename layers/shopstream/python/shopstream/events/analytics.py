"""The events of analytics-events (version v1)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import MAX_LINES, Id, StockCount, example

analytics_event = TopicEvents("analytics-events", key="alertId")


@analytics_event
class FraudSuspected(WireModel):
    """A customer had ``declines`` (≥ 3) declined payments within ``window_minutes`` of event time."""

    model_config = example({"alertId": "FraudSuspected-1", "userId": "u-1", "declines": 3, "windowMinutes": 10,
                            "firstDeclineAt": "2026-01-01T00:00:00Z", "lastDeclineAt": "2026-01-01T00:05:00Z",
                            "paymentIds": ["pay-1", "pay-2", "pay-3"]})

    alert_id: Id
    user_id: Id
    declines: int = Field(ge=1, le=10_000)
    window_minutes: int = Field(ge=1, le=1440)
    first_decline_at: datetime
    last_decline_at: datetime
    payment_ids: list[Id] = Field(max_length=MAX_LINES)


@analytics_event
class StockOutPredicted(WireModel):
    """At the recent rate of reservations, the product's available stock runs out within the horizon."""

    model_config = example({"alertId": "StockOutPredicted-1", "productId": "p-1", "available": 8,
                            "unitsPerMinute": 0.5, "minutesToStockOut": 16, "lookbackMinutes": 15,
                            "windowStart": "2026-01-01T00:00:00Z"})

    alert_id: Id
    product_id: Id
    available: StockCount
    units_per_minute: float = Field(ge=0, le=10**12)
    minutes_to_stock_out: int = Field(ge=0, le=10**6)
    lookback_minutes: int = Field(ge=1, le=1440)
    window_start: datetime


@analytics_event
class PaymentFailureSpike(WireModel):
    """The payment failure rate was over ``threshold`` in each of consecutive closed 1-minute windows."""

    model_config = example({"alertId": "PaymentFailureSpike-1", "threshold": 0.5,
                            "windowStarts": ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"],
                            "failureRates": [0.6, 0.75, 1.0], "attempts": [5, 4, 3]})

    alert_id: Id
    threshold: float = Field(ge=0, le=1)
    window_starts: list[datetime] = Field(min_length=1, max_length=60)
    failure_rates: list[float] = Field(min_length=1, max_length=60)
    attempts: list[int] = Field(min_length=1, max_length=60)
