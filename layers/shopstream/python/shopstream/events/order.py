"""The events of order-events (version v1; OrderCreated also v2, its shipping address sealed)."""

from __future__ import annotations

from pydantic import Field

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import (
    MAX_LINES,
    Address,
    CancellationReason,
    Id,
    ItemQuantity,
    Label,
    Money,
    OrderLine,
    example,
    sealed_example,
)
from shopstream.personal import Sealed, personal

order_event = TopicEvents("order-events", key="orderId")


class OrderCreated(WireModel):
    """An order was placed (every version). The shipping address is in the version's class."""

    order_id: Id
    user_id: Id
    items: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    total: Money
    payment_method: str = Field(min_length=1, max_length=64)
    cart_id: Id | None = None


@order_event.version(1, of="OrderCreated")
class OrderCreatedV1(OrderCreated):
    """v1: the shipping address in clear. No longer produced (v2 replaced it); still accepted."""

    model_config = example({"orderId": "o-1", "userId": "u-1",
                            "items": [{"productId": "p-1", "quantity": 2,
                                       "unitPrice": {"amount": 1250, "currency": "EUR"}}],
                            "total": {"amount": 2500, "currency": "EUR"}, "paymentMethod": "pm_card_visa",
                            "shippingAddress": {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01",
                                                "country": "IE"}})

    shipping_address: Address = personal("address")


@order_event.version(2, of="OrderCreated")
class OrderCreatedV2(OrderCreated):
    """v2: the shipping address sealed for the customer (only shipping opens it)."""

    model_config = example({"orderId": "o-1", "userId": "u-1",
                            "items": [{"productId": "p-1", "quantity": 2,
                                       "unitPrice": {"amount": 1250, "currency": "EUR"}}],
                            "total": {"amount": 2500, "currency": "EUR"}, "paymentMethod": "pm_card_visa",
                            "shippingAddress": sealed_example("address")})

    shipping_address: Sealed = personal("address")


@order_event
class OrderConfirmed(WireModel):
    model_config = example({"orderId": "o-1", "userId": "u-1", "paymentId": "pay-1",
                            "total": {"amount": 2500, "currency": "EUR"}})

    order_id: Id
    user_id: Id
    payment_id: Id
    total: Money


@order_event
class OrderCancelled(WireModel):
    model_config = example({"orderId": "o-1", "userId": "u-1", "reason": "customer_request",
                            "previousStatus": "PENDING", "items": [{"productId": "p-1", "quantity": 2}]})

    order_id: Id
    user_id: Id
    reason: CancellationReason
    previous_status: Label
    items: list[ItemQuantity] = Field(max_length=MAX_LINES)


@order_event
class OrderShipped(WireModel):
    model_config = example({"orderId": "o-1", "userId": "u-1", "shipmentId": "s-1", "carrier": "An Post",
                            "trackingNumber": "T1"})

    order_id: Id
    user_id: Id
    shipment_id: Id
    carrier: Label
    tracking_number: Label


@order_event
class OrderCancellationRequested(WireModel):
    """The customer asked to cancel a confirmed order: shipping decides (it holds the parcel)."""

    model_config = example({"orderId": "o-1", "userId": "u-1", "reason": "customer_request"})

    order_id: Id
    user_id: Id
    reason: CancellationReason
