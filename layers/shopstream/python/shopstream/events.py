"""Typed payloads (the ``data`` of the envelope) of every event type, version v1.

Compatibility rule: a later change to a v1 model may only add optional fields.
Anything else is a new version with its own model (see docs/events.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from shopstream.envelope import WireModel

Id = Annotated[str, Field(min_length=1, max_length=128)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
CancellationReason = Literal["out_of_stock", "payment_declined", "customer_request", "timeout"]


class Money(WireModel):
    """An amount in integer minor units (cents) and an ISO-4217 currency."""

    amount: int = Field(ge=0)
    currency: CurrencyCode


class Address(WireModel):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$")


class ItemQuantity(WireModel):
    product_id: Id
    quantity: int = Field(gt=0, le=1000)


class OrderLine(ItemQuantity):
    unit_price: Money


class StockLevel(WireModel):
    """A product's stock after a change; ``version`` orders changes of one product."""

    product_id: Id
    quantity: int = Field(ge=0)
    available: int = Field(ge=0)
    reserved: int = Field(ge=0)
    version: int = Field(ge=1)


class Shortage(WireModel):
    product_id: Id
    requested: int = Field(gt=0)
    available: int = Field(ge=0)


# --- user-events -------------------------------------------------------------------
class UserRegistered(WireModel):
    user_id: Id
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    version: int = Field(default=1, ge=1)


class UserUpdated(WireModel):
    user_id: Id
    email: str | None = Field(default=None, min_length=3, max_length=254)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    version: int = Field(ge=1)


class UserDeactivated(WireModel):
    user_id: Id
    reason: str | None = None
    version: int = Field(ge=1)


# --- catalog-events ----------------------------------------------------------------
class ProductCreated(WireModel):
    product_id: Id
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    price: Money
    version: int = Field(default=1, ge=1)


class ProductUpdated(WireModel):
    product_id: Id
    name: str | None = Field(default=None, min_length=1, max_length=200)
    price: Money | None = None
    version: int = Field(ge=1)


class ProductDiscontinued(WireModel):
    product_id: Id
    version: int = Field(ge=1)


# --- inventory-events --------------------------------------------------------------
class InventoryAdjusted(WireModel):
    product_id: Id
    delta: int
    reason: str = Field(min_length=1, max_length=200)
    level: StockLevel


class InventoryReserved(WireModel):
    order_id: Id
    lines: list[ItemQuantity] = Field(min_length=1)
    levels: list[StockLevel]


class InventoryReleased(WireModel):
    order_id: Id
    reason: str
    lines: list[ItemQuantity] = Field(min_length=1)
    levels: list[StockLevel]


class InventoryReservationFailed(WireModel):
    order_id: Id
    reason: Literal["out_of_stock", "unknown_product"]
    shortages: list[Shortage]


# --- cart-events -------------------------------------------------------------------
class CartCreated(WireModel):
    cart_id: Id
    user_id: Id
    items: list[ItemQuantity]


class CartUpdated(WireModel):
    cart_id: Id
    user_id: Id
    items: list[ItemQuantity]
    status: Literal["OPEN", "CHECKED_OUT", "ABANDONED"] = "OPEN"
    version: int = Field(ge=1)


class CartAbandoned(WireModel):
    cart_id: Id
    user_id: Id
    items: list[ItemQuantity]
    last_activity_at: datetime


# --- order-events ------------------------------------------------------------------
class OrderCreated(WireModel):
    order_id: Id
    user_id: Id
    items: list[OrderLine] = Field(min_length=1)
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
    previous_status: str
    items: list[ItemQuantity]


class OrderShipped(WireModel):
    order_id: Id
    user_id: Id
    shipment_id: Id
    carrier: str
    tracking_number: str


# --- payment-events ----------------------------------------------------------------
class PaymentInitiated(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    payment_method: str


class PaymentProcessed(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    provider_reference: str


class PaymentFailed(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    decline_code: str
    message: str | None = None


class PaymentRefunded(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    refund_reference: str


# --- shipping-events ---------------------------------------------------------------
class ShippingCreated(WireModel):
    shipment_id: Id
    order_id: Id
    user_id: Id
    address: Address
    items: list[ItemQuantity]


class ShippingDispatched(WireModel):
    shipment_id: Id
    order_id: Id
    user_id: Id
    carrier: str
    tracking_number: str


class ShippingDelivered(WireModel):
    shipment_id: Id
    order_id: Id
    user_id: Id
    delivered_at: datetime


# --- notification-events -----------------------------------------------------------
class NotificationSent(WireModel):
    notification_id: Id
    user_id: Id
    channel: Literal["email", "sms", "push"]
    template: str
    cause_event_type: str


class NotificationFailed(WireModel):
    notification_id: Id
    user_id: Id
    channel: Literal["email", "sms", "push"]
    template: str
    cause_event_type: str
    error: str


# --- audit-events ------------------------------------------------------------------
class AuditRecorded(WireModel):
    """Who did what through the API, and how it ended."""

    actor: Id
    action: str = Field(min_length=1, max_length=100)
    resource: str = Field(min_length=1, max_length=300)
    outcome: Literal["success", "rejected", "failed"]
    status_code: int = Field(ge=100, le=599)
