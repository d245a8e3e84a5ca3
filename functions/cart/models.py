from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events import ItemQuantity


class CartItems(WireModel):
    items: list[ItemQuantity] = Field(max_length=100)


class CartView(WireModel):
    cart_id: str
    user_id: str
    items: list[ItemQuantity]
    status: str
    version: int
    updated_at: str
