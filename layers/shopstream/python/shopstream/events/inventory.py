"""The events of inventory-events (version v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import MAX_LINES, Id, ItemQuantity, Label, Shortage, StockLevel, example

product_keyed_inventory_event = TopicEvents("inventory-events", key="productId")
order_keyed_inventory_event = TopicEvents("inventory-events", key="orderId")


@product_keyed_inventory_event
class InventoryAdjusted(WireModel):
    model_config = example({"productId": "p-1", "delta": 10, "reason": "restock",
                            "level": {"productId": "p-1", "quantity": 10, "available": 8, "reserved": 2, "version": 3}})

    product_id: Id
    delta: int = Field(ge=-(10**12), le=10**12)
    reason: str = Field(min_length=1, max_length=200)
    level: StockLevel


@order_keyed_inventory_event
class InventoryReserved(WireModel):
    model_config = example({"orderId": "o-1", "lines": [{"productId": "p-1", "quantity": 2}],
                            "levels": [{"productId": "p-1", "quantity": 10, "available": 8, "reserved": 2,
                                        "version": 3}]})

    order_id: Id
    lines: list[ItemQuantity] = Field(min_length=1, max_length=MAX_LINES)
    levels: list[StockLevel] = Field(max_length=MAX_LINES)


@order_keyed_inventory_event
class InventoryReleased(WireModel):
    model_config = example({"orderId": "o-1", "reason": "payment_declined",
                            "lines": [{"productId": "p-1", "quantity": 2}],
                            "levels": [{"productId": "p-1", "quantity": 10, "available": 8, "reserved": 2,
                                        "version": 3}]})

    order_id: Id
    reason: Label
    lines: list[ItemQuantity] = Field(min_length=1, max_length=MAX_LINES)
    levels: list[StockLevel] = Field(max_length=MAX_LINES)


@order_keyed_inventory_event
class InventoryReservationFailed(WireModel):
    model_config = example({"orderId": "o-1", "reason": "out_of_stock",
                            "shortages": [{"productId": "p-1", "requested": 2, "available": 1}]})

    order_id: Id
    reason: Literal["out_of_stock", "unknown_product"]
    shortages: list[Shortage] = Field(max_length=MAX_LINES)
