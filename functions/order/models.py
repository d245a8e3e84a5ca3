from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events import Address, ItemQuantity, Money, OrderLine


class PlaceOrder(WireModel):
    items: list[ItemQuantity] = Field(min_length=1, max_length=50)
    payment_method: str = Field(min_length=1, max_length=64)
    shipping_address: Address
    cart_id: str | None = Field(default=None, max_length=128)


class OrderAccepted(WireModel):
    order_id: str
    status: str
    correlation_id: str


class OrderView(WireModel):
    order_id: str
    user_id: str
    status: str
    items: list[OrderLine]
    total: Money
    payment_method: str
    shipping_address: Address
    cart_id: str | None = None
    cancellation_reason: str | None = None
    payment_id: str | None = None
    shipment_id: str | None = None
    refunded: bool = False
    created_at: str
    updated_at: str
    version: int


class OrderHistory(WireModel):
    user_id: str
    customer_name: str | None = None
    orders: list[OrderView]
