"""Typed payloads (the ``data`` of the envelope) of every event type and version.

Compatibility rule: a later change to an existing version's model may only add optional fields.
Anything else is a new version with its own model (see docs/events.md).

An event type with several versions has a class that says what every version says (handlers match
it: ``case OrderCreated():`` takes v1 and v2) and one subclass per version (``OrderCreatedV1``,
``OrderCreatedV2``), which the catalog registers. Personal fields are marked with
``personal(kind)`` (shopstream.personal); from v2 on they travel sealed for the customer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from shopstream.currencies import ISO_4217_CODES
from shopstream.envelope import WireModel
from shopstream.personal import Sealed, personal

Id = Annotated[str, Field(min_length=1, max_length=128)]
# Free text that travels in events: bounded so that every event, and every item built from it,
# stays far below DynamoDB's 400 KB item and Kafka's 1 MB record limits.
Text = Annotated[str, Field(max_length=500)]
Label = Annotated[str, Field(min_length=1, max_length=100)]
CurrencyCode = Literal[ISO_4217_CODES]  # type: ignore[valid-type]
CancellationReason = Literal["out_of_stock", "payment_declined", "customer_request", "timeout"]
# The largest amount anything in the shop may carry (minor units): a total of 50 lines of 1,000
# units at the largest unit price fits, and so does any sum DynamoDB adds up (38 digits).
MAX_AMOUNT = 10**15
MAX_LINES = 50
MAX_QUANTITY = 1000


class Money(WireModel):
    """An amount in integer minor units (cents) and an ISO-4217 currency."""

    amount: int = Field(ge=0, le=MAX_AMOUNT)
    currency: CurrencyCode


class Address(WireModel):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$")


class ItemQuantity(WireModel):
    product_id: Id
    quantity: int = Field(gt=0, le=MAX_QUANTITY)


class OrderLine(ItemQuantity):
    unit_price: Money


StockCount = Annotated[int, Field(ge=0, le=10**12)]
Version = Annotated[int, Field(ge=1, le=10**12)]


class StockLevel(WireModel):
    """A product's stock after a change; ``version`` orders changes of one product."""

    product_id: Id
    quantity: StockCount
    available: StockCount
    reserved: StockCount
    version: Version


class Shortage(WireModel):
    product_id: Id
    requested: int = Field(gt=0, le=MAX_LINES * MAX_QUANTITY)
    available: StockCount


# --- user-events -------------------------------------------------------------------
class UserRegistered(WireModel):
    """A customer registered (every version). The address and name are in the version's class."""

    user_id: Id
    version: Version = 1


class UserRegisteredV1(UserRegistered):
    """v1: address and name in clear. No longer produced (v2 replaced it); still accepted."""

    email: str = personal("email", min_length=3, max_length=254)
    name: str = personal("name", min_length=1, max_length=200)


class UserRegisteredV2(UserRegistered):
    """v2: address and name sealed for the customer."""

    email: Sealed = personal("email")
    name: Sealed = personal("name")


class UserUpdated(WireModel):
    """A customer changed their profile (every version); only the fields that changed are set."""

    user_id: Id
    version: Version


class UserUpdatedV1(UserUpdated):
    """v1: in clear. No longer produced (v2 replaced it); still accepted."""

    email: str | None = personal("email", default=None, min_length=3, max_length=254)
    name: str | None = personal("name", default=None, min_length=1, max_length=200)


class UserUpdatedV2(UserUpdated):
    """v2: sealed for the customer."""

    email: Sealed | None = personal("email", default=None)
    name: Sealed | None = personal("name", default=None)


class UserDeactivated(WireModel):
    user_id: Id
    reason: Text | None = None
    version: Version


class UserErased(WireModel):
    """The customer's personal data was erased at their (or an admin's) request: their key is destroyed,
    so every sealed copy of their data is unreadable, and each service drops or pseudonymises what it
    keeps of them. Carries no personal data; ``version`` is the erased profile's."""

    user_id: Id
    version: Version


# --- catalog-events ----------------------------------------------------------------
class ProductCreated(WireModel):
    product_id: Id
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    price: Money
    version: Version = 1


class ProductUpdated(WireModel):
    product_id: Id
    name: str | None = Field(default=None, min_length=1, max_length=200)
    price: Money | None = None
    version: Version


class ProductDiscontinued(WireModel):
    product_id: Id
    version: Version


# --- inventory-events --------------------------------------------------------------
class InventoryAdjusted(WireModel):
    product_id: Id
    delta: int = Field(ge=-(10**12), le=10**12)
    reason: str = Field(min_length=1, max_length=200)
    level: StockLevel


class InventoryReserved(WireModel):
    order_id: Id
    lines: list[ItemQuantity] = Field(min_length=1, max_length=MAX_LINES)
    levels: list[StockLevel] = Field(max_length=MAX_LINES)


class InventoryReleased(WireModel):
    order_id: Id
    reason: Label
    lines: list[ItemQuantity] = Field(min_length=1, max_length=MAX_LINES)
    levels: list[StockLevel] = Field(max_length=MAX_LINES)


class InventoryReservationFailed(WireModel):
    order_id: Id
    reason: Literal["out_of_stock", "unknown_product"]
    shortages: list[Shortage] = Field(max_length=MAX_LINES)


# --- cart-events -------------------------------------------------------------------
MAX_CART_ITEMS = 100
CartStatus = Literal["OPEN", "CHECKED_OUT", "ABANDONED"]


class CartCreated(WireModel):
    cart_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_CART_ITEMS)


class CartUpdated(WireModel):
    cart_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_CART_ITEMS)
    status: CartStatus = "OPEN"
    version: Version


class CartAbandoned(WireModel):
    cart_id: Id
    user_id: Id
    items: list[ItemQuantity] = Field(max_length=MAX_CART_ITEMS)
    last_activity_at: datetime


# --- order-events ------------------------------------------------------------------
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


# --- payment-events ----------------------------------------------------------------
class PaymentInitiated(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    payment_method: str = Field(min_length=1, max_length=64)


class PaymentProcessed(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    provider_reference: Label


class PaymentFailed(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    decline_code: Label
    message: Text | None = None


class PaymentRefunded(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    refund_reference: Label


# --- shipping-events ---------------------------------------------------------------
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


# --- notification-events -----------------------------------------------------------
class NotificationSent(WireModel):
    notification_id: Id
    user_id: Id
    channel: Literal["email", "sms", "push"]
    template: Label
    cause_event_type: Label


class NotificationFailed(WireModel):
    """``error`` is a classification (e.g. ``no_address``, ``rejected``), never the provider's text."""

    notification_id: Id
    user_id: Id
    channel: Literal["email", "sms", "push"]
    template: Label
    cause_event_type: Label
    error: Text


# --- audit-events ------------------------------------------------------------------
class AuditRecorded(WireModel):
    """Who did what through the API, and how it ended."""

    actor: Id
    action: str = Field(min_length=1, max_length=100)
    resource: str = Field(min_length=1, max_length=300)
    outcome: Literal["success", "rejected", "failed"]
    status_code: int = Field(ge=100, le=599)


# --- analytics-events (complex event processing in the audit service) ---------------------
class FraudSuspected(WireModel):
    """A customer had ``declines`` (≥ 3) declined payments within ``window_minutes`` of event time."""

    alert_id: Id
    user_id: Id
    declines: int = Field(ge=1, le=10_000)
    window_minutes: int = Field(ge=1, le=1440)
    first_decline_at: datetime
    last_decline_at: datetime
    payment_ids: list[Id] = Field(max_length=MAX_LINES)


class StockOutPredicted(WireModel):
    """At the recent rate of reservations, the product's available stock runs out within the horizon."""

    alert_id: Id
    product_id: Id
    available: StockCount
    units_per_minute: float = Field(ge=0, le=10**12)
    minutes_to_stock_out: int = Field(ge=0, le=10**6)
    lookback_minutes: int = Field(ge=1, le=1440)
    window_start: datetime


class PaymentFailureSpike(WireModel):
    """The payment failure rate was over ``threshold`` in each of consecutive closed 1-minute windows."""

    alert_id: Id
    threshold: float = Field(ge=0, le=1)
    window_starts: list[datetime] = Field(min_length=1, max_length=60)
    failure_rates: list[float] = Field(min_length=1, max_length=60)
    attempts: list[int] = Field(min_length=1, max_length=60)
