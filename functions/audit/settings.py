"""The audit service's own settings (``SHOPSTREAM_<NAME>``): the analytics' windows and patterns."""

from __future__ import annotations

from pydantic import Field

from shopstream.config import EnvSettings, service_settings


class AuditSettings(EnvSettings):

    # The trail (GET /audit/{correlationId}) keeps an event this long after its event time, then DynamoDB's TTL
    # deletes it; the archive in S3 keeps every event for the environment's auditRetention (cdk.json
    # trailRetentionDays; docs/decisions.md, 2026-12-05).
    trail_retention_days: int = Field(default=7, ge=1)

    # Windows: tumbling, one minute of event time; an event is taken while its window is open, i.e.
    # until ``analytics_lateness_seconds`` after the window's end (by the processing clock).
    analytics_lateness_seconds: int = 300
    # Windows, pattern facts and alerts expire (DynamoDB TTL) this long after their window.
    analytics_retention_hours: int = 48
    # FraudSuspected: this many declined payments of one customer within this many minutes.
    fraud_declines: int = 3
    fraud_window_minutes: int = 10
    # PaymentFailureSpike: failure rate over the threshold (with at least the minimum of attempts) in
    # this many consecutive closed windows.
    spike_failure_rate: float = 0.5
    spike_min_attempts: int = 3
    spike_windows: int = 3
    # StockOutPredicted: reserved units per minute over the lookback predict a stock-out within the horizon.
    stockout_lookback_minutes: int = 15
    stockout_horizon_minutes: int = 60
    # An alert is listed as open for this long after it was detected (event time).
    alert_open_minutes: int = 60


def settings() -> AuditSettings:
    return service_settings(AuditSettings)
