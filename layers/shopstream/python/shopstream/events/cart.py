"""The events of cart-events (version v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import Id, ItemQuantity, Version

MAX_CART_ITEMS = 100
CartStatus = Literal["OPEN", "CHECKED_OUT", "ABANDONED"]


class CartCreated(WireModel):
    cart_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_CART_ITEMS)


class CartUpdated(WireModel):
    cart_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_CART_ITEMS)
    status: CartStatus = "OPEN"
    version: Version


class CartAbandoned(WireModel):
    cart_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_CART_ITEMS)
    last_activity_at: datetime
