"""The events of cart-events (version v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import Id, ItemQuantity, Version, example

cart_event = TopicEvents("cart-events", key="cartId")

MAX_CART_ITEMS = 100
CartStatus = Literal["OPEN", "CHECKED_OUT", "ABANDONED"]


@cart_event
class CartCreated(WireModel):
    model_config = example({"cartId": "c-1", "userId": "u-1", "items": [{"productId": "p-1", "quantity": 2}]})

    cart_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_CART_ITEMS)


@cart_event
class CartUpdated(WireModel):
    model_config = example({"cartId": "c-1", "userId": "u-1", "items": [{"productId": "p-1", "quantity": 2}],
                            "version": 2})

    cart_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_CART_ITEMS)
    status: CartStatus = "OPEN"
    version: Version


@cart_event
class CartAbandoned(WireModel):
    model_config = example({"cartId": "c-1", "userId": "u-1", "items": [{"productId": "p-1", "quantity": 2}],
                            "lastActivityAt": "2026-01-01T00:00:00Z"})

    cart_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_CART_ITEMS)
    last_activity_at: datetime
