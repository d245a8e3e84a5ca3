"""The events of shipping-events (version v1; ShippingCreated also v2, without the address)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import MAX_LINES, Address, CancellationReason, Id, ItemQuantity, Label, example
from shopstream.personal import personal

shipping_event = TopicEvents("shipping-events", key="orderId")


class ShippingCreated(WireModel):
    """A parcel was created for a confirmed order (every version)."""

    shipment_id: Id
    order_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_LINES)


@shipping_event.version(1, of="ShippingCreated")
class ShippingCreatedV1(ShippingCreated):
    """v1: with the address in clear. No longer produced (v2 replaced it); still accepted."""

    model_config = example({"shipmentId": "s-1", "orderId": "o-1", "userId": "u-1",
                            "address": {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"},
                            "items": [{"productId": "p-1", "quantity": 2}]})

    address: Address = personal("address")


@shipping_event.version(2, of="ShippingCreated")
class ShippingCreatedV2(ShippingCreated):
    """v2: without the address, which no consumer needs (shipping keeps it, sealed)."""

    model_config = example({"shipmentId": "s-1", "orderId": "o-1", "userId": "u-1",
                            "items": [{"productId": "p-1", "quantity": 2}]})


@shipping_event
class ShippingDispatched(WireModel):
    model_config = example({"shipmentId": "s-1", "orderId": "o-1", "userId": "u-1", "carrier": "An Post",
                            "trackingNumber": "T1"})

    shipment_id: Id
    order_id: Id
    user_id: Id
    carrier: Label
    tracking_number: Label


@shipping_event
class ShippingDelivered(WireModel):
    model_config = example({"shipmentId": "s-1", "orderId": "o-1", "userId": "u-1",
                            "deliveredAt": "2026-01-02T00:00:00Z"})

    shipment_id: Id
    order_id: Id
    user_id: Id
    delivered_at: datetime


@shipping_event
class ShippingCancelled(WireModel):
    """Shipping gave a parcel up before it was dispatched, at the customer's request."""

    model_config = example({"shipmentId": "s-1", "orderId": "o-1", "userId": "u-1", "reason": "customer_request"})

    shipment_id: Id
    order_id: Id
    user_id: Id
    reason: CancellationReason
