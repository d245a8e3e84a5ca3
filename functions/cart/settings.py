"""The cart service's own settings, from the environment (``SHOPSTREAM_<NAME>``), read on first use."""

from __future__ import annotations

from shopstream.config import EnvSettings, service_settings


class CartSettings(EnvSettings):

    # Idle time after which an open cart is abandoned (CartAbandoned, then a reminder).
    cart_abandon_after_seconds: int = 24 * 3600


def settings() -> CartSettings:
    return service_settings(CartSettings)
