from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events import ItemQuantity

from .store import MAX_PRODUCTS


class CartItems(WireModel):
    # Each product in an open cart is an index entry written with it (store.py): lines are bounded by that.
    items: list[ItemQuantity] = Field(max_length=MAX_PRODUCTS)


class CartView(WireModel):
    cart_id: str
    user_id: str
    items: list[ItemQuantity]
    status: str
    version: int
    updated_at: str
