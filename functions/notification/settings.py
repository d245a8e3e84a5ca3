"""The notification service's own settings, from the environment (``SHOPSTREAM_<NAME>``), read on first use."""

from __future__ import annotations

from shopstream.config import EnvSettings, service_settings


class NotificationSettings(EnvSettings):

    # The verified SES identity messages are sent from.
    notification_sender: str = "shop@shopstream.example"
    # Where analytics alerts (FraudSuspected, StockOutPredicted, PaymentFailureSpike) are sent.
    notification_admin_email: str = "admins@shopstream.example"


def settings() -> NotificationSettings:
    return service_settings(NotificationSettings)
