"""The events of inventory-events (version v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import MAX_LINES, Id, ItemQuantity, Label, Shortage, StockLevel


class InventoryAdjusted(WireModel):
    product_id: Id
    delta: int = Field(ge=-(10**12), le=10**12)
    reason: str = Field(min_length=1, max_length=200)
    level: StockLevel


class InventoryReserved(WireModel):
    order_id: Id
    lines: list[ItemQuantity] = Field(min_length=1, max_length=MAX_LINES)
    levels: list[StockLevel] = Field(max_length=MAX_LINES)


class InventoryReleased(WireModel):
    order_id: Id
    reason: Label
    lines: list[ItemQuantity] = Field(min_length=1, max_length=MAX_LINES)
    levels: list[StockLevel] = Field(max_length=MAX_LINES)


class InventoryReservationFailed(WireModel):
    order_id: Id
    reason: Literal["out_of_stock", "unknown_product"]
    shortages: list[Shortage] = Field(max_length=MAX_LINES)
