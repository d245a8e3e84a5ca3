"""The cart service's own settings, from the environment (``SHOPSTREAM_<NAME>``), read on first use."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from shopstream.config import service_settings


class CartSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_", extra="ignore")

    # Idle time after which an open cart is abandoned (CartAbandoned, then a reminder).
    cart_abandon_after_seconds: int = 24 * 3600


def settings() -> CartSettings:
    return service_settings(CartSettings)
