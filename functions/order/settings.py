"""The order service's own settings, from the environment (``SHOPSTREAM_<NAME>``), read on first use."""

from __future__ import annotations

from shopstream.config import EnvSettings, service_settings


class OrderSettings(EnvSettings):

    # How long a saga may stay PENDING before the sweeper cancels it (reason "timeout").
    order_saga_timeout_seconds: int = 300


def settings() -> OrderSettings:
    return service_settings(OrderSettings)
