"""The events of order-events (version v1)."""

from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import MAX_LINES, Address, CancellationReason, Id, ItemQuantity, Label, Money, OrderLine


class OrderCreated(WireModel):
    order_id: Id
    user_id: Id
    items: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    total: Money
    payment_method: str = Field(min_length=1, max_length=64)
    shipping_address: Address
    cart_id: Id | None = None


class OrderConfirmed(WireModel):
    order_id: Id
    user_id: Id
    payment_id: Id
    total: Money


class OrderCancelled(WireModel):
    order_id: Id
    user_id: Id
    reason: CancellationReason
    previous_status: Label
    items: list[ItemQuantity] = Field(max_length=MAX_LINES)


class OrderCancellationRequested(WireModel):
    """The customer asked to cancel a confirmed order: shipping decides (it holds the parcel)."""

    order_id: Id
    user_id: Id
    reason: CancellationReason


class OrderShipped(WireModel):
    order_id: Id
    user_id: Id
    shipment_id: Id
    carrier: Label
    tracking_number: Label
