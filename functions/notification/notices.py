"""Which notice an event gives, chosen by the type of its data: one function per topic, so that a function loads
the models of the topic it handles and no other (shopstream.events loads a topic's module on first use).

A subscribed event with no case here is a poison record (dead-lettered with the reason, never retried), and a test
fails for it first (tests/unit/test_notification_notices.py: every event the catalog sends to a notification handler).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shopstream import events
from shopstream.inbound import PoisonRecord


@dataclass(frozen=True)
class Notice:
    template: str
    subject: str
    reference: str  # what the message names: the order, the cart, the alert's subject
    marketing: bool = False  # never sent to a deactivated customer


def user_notice(data: Any) -> Notice | None:
    match data:
        case events.UserRegistered():
            return Notice("welcome", "Welcome to shopstream", "")
        case events.UserUpdated():
            return Notice("profile-updated", "Your profile was updated", "")
        case events.UserDeactivated() | events.UserErased():
            return None  # they change the contact; nothing is sent
    raise _no_notice(data)


def order_notice(data: Any) -> Notice:
    match data:
        case events.OrderConfirmed(order_id=order_id):
            return Notice("order-confirmed", "Your order is confirmed", order_id)
        case events.OrderCancelled(order_id=order_id):
            return Notice("order-cancelled", "Your order was cancelled", order_id)
        case events.OrderShipped(order_id=order_id):
            return Notice("order-shipped", "Your order is on its way", order_id)
    raise _no_notice(data)


def payment_notice(data: Any) -> Notice:
    match data:
        case events.PaymentFailed(order_id=order_id):
            return Notice("payment-failed", "Your payment did not go through", order_id)
        case events.PaymentRefunded(order_id=order_id):
            return Notice("payment-refunded", "Your refund is on its way", order_id)
    raise _no_notice(data)


def shipping_notice(data: Any) -> Notice:
    match data:
        case events.ShippingDispatched(order_id=order_id):
            return Notice("shipment-dispatched", "Your parcel was dispatched", order_id)
        case events.ShippingDelivered(order_id=order_id):
            return Notice("shipment-delivered", "Your parcel was delivered", order_id)
    raise _no_notice(data)


def cart_notice(data: Any) -> Notice:
    match data:
        case events.CartAbandoned(cart_id=cart_id):
            return Notice("cart-reminder", "You left something in your cart", cart_id, marketing=True)
    raise _no_notice(data)


def alert_notice(data: Any) -> Notice:
    """To the shop's administrators: the reference is what the alert is about."""
    match data:
        case events.FraudSuspected(user_id=user_id):
            return Notice("alert-fraud-suspected", "Fraud suspected", user_id)
        case events.StockOutPredicted(product_id=product_id):
            return Notice("alert-stock-out-predicted", "Stock-out predicted within the hour", product_id)
        case events.PaymentFailureSpike():
            return Notice("alert-payment-failure-spike", "Payment failure spike", "payments")
    raise _no_notice(data)


# The customer's notices, by the topic an event came from.
CUSTOMER_NOTICES: dict[str, Callable[[Any], Notice | None]] = {
    "user-events": user_notice,
    "order-events": order_notice,
    "payment-events": payment_notice,
    "shipping-events": shipping_notice,
    "cart-events": cart_notice,
}


def customer_notice(topic: str, data: Any) -> Notice | None:
    """The notice an event of ``topic`` gives its customer (None: it gives none)."""
    notice_of = CUSTOMER_NOTICES.get(topic)
    if notice_of is None:
        raise PoisonRecord("no_notice", f"no customer notices for {topic}")
    return notice_of(data)


def required(notice: Notice | None, data: Any) -> Notice:
    """``notice``, where the event must give one."""
    if notice is None:
        raise _no_notice(data)
    return notice


def _no_notice(data: Any) -> PoisonRecord:
    return PoisonRecord("no_notice", f"no notice for {type(data).__name__}")
