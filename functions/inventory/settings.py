"""The inventory service's own settings, from the environment (``SHOPSTREAM_<NAME>``), read on first use."""

from __future__ import annotations

from pydantic import Field

from shopstream.config import EnvSettings, service_settings


class InventorySettings(EnvSettings):

    # Stock counters of a product created from now on (docs/capacity.md: each takes ~80 reservations/s
    # before optimistic retries dominate, so a product sells ~N times that). At most 48: an adjustment
    # writes every counter and an event for each in one transaction (2 x 48 + 1 of DynamoDB's 100).
    inventory_stock_shards: int = Field(default=4, ge=1, le=48)


def settings() -> InventorySettings:
    return service_settings(InventorySettings)
