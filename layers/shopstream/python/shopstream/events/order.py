"""The events of order-events (version v1; OrderCreated also v2, its shipping address sealed)."""

from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import MAX_LINES, Address, CancellationReason, Id, ItemQuantity, Label, Money, OrderLine
from shopstream.personal import Sealed, personal


class OrderCreated(WireModel):
    """An order was placed (every version). The shipping address is in the version's class."""

    order_id: Id
    user_id: Id
    items: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    total: Money
    payment_method: str = Field(min_length=1, max_length=64)
    cart_id: Id | None = None


class OrderCreatedV1(OrderCreated):
    """v1: the shipping address in clear. No longer produced (v2 replaced it); still accepted."""

    shipping_address: Address = personal("address")


class OrderCreatedV2(OrderCreated):
    """v2: the shipping address sealed for the customer (only shipping opens it)."""

    shipping_address: Sealed = personal("address")


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
