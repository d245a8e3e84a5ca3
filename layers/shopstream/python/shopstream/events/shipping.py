"""The events of shipping-events (version v1)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import MAX_LINES, Address, CancellationReason, Id, ItemQuantity, Label


class ShippingCreated(WireModel):
    shipment_id: Id
    order_id: Id
    user_id: Id
    address: Address
    items: list[ItemQuantity] = Field(max_length=MAX_LINES)


class ShippingDispatched(WireModel):
    shipment_id: Id
    order_id: Id
    user_id: Id
    carrier: Label
    tracking_number: Label


class ShippingDelivered(WireModel):
    shipment_id: Id
    order_id: Id
    user_id: Id
    delivered_at: datetime


class ShippingCancelled(WireModel):
    """Shipping gave a parcel up before it was dispatched, at the customer's request."""

    shipment_id: Id
    order_id: Id
    user_id: Id
    reason: CancellationReason
