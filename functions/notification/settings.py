"""The notification service's own settings, from the environment (``SHOPSTREAM_<NAME>``), read on first use."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from shopstream.config import service_settings


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_", extra="ignore")

    # The verified SES identity messages are sent from.
    notification_sender: str = "shop@shopstream.example"
    # Where analytics alerts (FraudSuspected, StockOutPredicted, PaymentFailureSpike) are sent.
    notification_admin_email: str = "admins@shopstream.example"


def settings() -> NotificationSettings:
    return service_settings(NotificationSettings)
