"""The events of shipping-events (version v1; ShippingCreated also v2, without the address)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import MAX_LINES, Address, CancellationReason, Id, ItemQuantity, Label
from shopstream.personal import personal


class ShippingCreated(WireModel):
    """A parcel was created for a confirmed order (every version)."""

    shipment_id: Id
    order_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_LINES)


class ShippingCreatedV1(ShippingCreated):
    """v1: with the address in clear. No longer produced (v2 replaced it); still accepted."""

    address: Address = personal("address")


class ShippingCreatedV2(ShippingCreated):
    """v2: without the address, which no consumer needs (shipping keeps it, sealed)."""


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
