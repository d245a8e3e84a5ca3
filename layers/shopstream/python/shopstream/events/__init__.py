"""Typed payloads (the ``data`` of the envelope) of every event type and version: a module per topic
(``shopstream.events.order`` holds the order-events), and what several topics share in
``shopstream.events.common``.

``from shopstream.events import OrderCreated`` loads the order-events module only: a function loads the
models of the topics it uses, not the whole catalog (a cold start builds no model it does not use;
docs/decisions.md, 2026-11-29). The catalog names each event's model without importing it
(catalog.EventSpec.model).

Compatibility rule: a later change to an existing version's model may only add optional fields.
Anything else is a new version with its own model (see docs/events.md).

An event type with several versions has a class that says what every version says (handlers match
it: ``case OrderCreated():`` takes v1 and v2) and one subclass per version (``OrderCreatedV1``,
``OrderCreatedV2``), which the catalog registers. Personal fields are marked with
``personal(kind)`` (shopstream.personal); from v2 on they travel sealed for the customer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The names each module defines (a look-up loads that module only).
NAMES: dict[str, tuple[str, ...]] = {
    "common": (
        "Id",
        "Text",
        "Label",
        "CurrencyCode",
        "CancellationReason",
        "MAX_AMOUNT",
        "MAX_LINES",
        "MAX_QUANTITY",
        "Money",
        "Address",
        "ItemQuantity",
        "OrderLine",
        "StockCount",
        "Version",
        "StockLevel",
        "Shortage",
    ),
    "user": (
        "UserRegistered",
        "UserRegisteredV1",
        "UserRegisteredV2",
        "UserUpdated",
        "UserUpdatedV1",
        "UserUpdatedV2",
        "UserDeactivated",
        "UserErased",
    ),
    "catalog": (
        "ProductCreated",
        "ProductUpdated",
        "ProductDiscontinued",
    ),
    "inventory": (
        "InventoryAdjusted",
        "InventoryReserved",
        "InventoryReleased",
        "InventoryReservationFailed",
    ),
    "cart": (
        "MAX_CART_ITEMS",
        "CartStatus",
        "CartCreated",
        "CartUpdated",
        "CartAbandoned",
    ),
    "order": (
        "OrderCreated",
        "OrderCreatedV1",
        "OrderCreatedV2",
        "OrderConfirmed",
        "OrderCancelled",
        "OrderCancellationRequested",
        "OrderShipped",
    ),
    "payment": (
        "PaymentInitiated",
        "PaymentAuthorised",
        "PaymentProcessed",
        "PaymentFailed",
        "PaymentRefunded",
        "PaymentVoided",
    ),
    "shipping": (
        "ShippingCreated",
        "ShippingCreatedV1",
        "ShippingCreatedV2",
        "ShippingDispatched",
        "ShippingDelivered",
        "ShippingCancelled",
    ),
    "notification": (
        "NotificationSent",
        "NotificationFailed",
    ),
    "audit": ("AuditRecorded",),
    "analytics": (
        "FraudSuspected",
        "StockOutPredicted",
        "PaymentFailureSpike",
    ),
}
_MODULE_OF = {name: module for module, names in NAMES.items() for name in names}

if TYPE_CHECKING:  # what type checkers see: every name, as if defined here
    from shopstream.events.analytics import (
        FraudSuspected as FraudSuspected,
    )
    from shopstream.events.analytics import (
        PaymentFailureSpike as PaymentFailureSpike,
    )
    from shopstream.events.analytics import (
        StockOutPredicted as StockOutPredicted,
    )
    from shopstream.events.audit import (
        AuditRecorded as AuditRecorded,
    )
    from shopstream.events.cart import (
        MAX_CART_ITEMS as MAX_CART_ITEMS,
    )
    from shopstream.events.cart import (
        CartAbandoned as CartAbandoned,
    )
    from shopstream.events.cart import (
        CartCreated as CartCreated,
    )
    from shopstream.events.cart import (
        CartStatus as CartStatus,
    )
    from shopstream.events.cart import (
        CartUpdated as CartUpdated,
    )
    from shopstream.events.catalog import (
        ProductCreated as ProductCreated,
    )
    from shopstream.events.catalog import (
        ProductDiscontinued as ProductDiscontinued,
    )
    from shopstream.events.catalog import (
        ProductUpdated as ProductUpdated,
    )
    from shopstream.events.common import (
        MAX_AMOUNT as MAX_AMOUNT,
    )
    from shopstream.events.common import (
        MAX_LINES as MAX_LINES,
    )
    from shopstream.events.common import (
        MAX_QUANTITY as MAX_QUANTITY,
    )
    from shopstream.events.common import (
        Address as Address,
    )
    from shopstream.events.common import (
        CancellationReason as CancellationReason,
    )
    from shopstream.events.common import (
        CurrencyCode as CurrencyCode,
    )
    from shopstream.events.common import (
        Id as Id,
    )
    from shopstream.events.common import (
        ItemQuantity as ItemQuantity,
    )
    from shopstream.events.common import (
        Label as Label,
    )
    from shopstream.events.common import (
        Money as Money,
    )
    from shopstream.events.common import (
        OrderLine as OrderLine,
    )
    from shopstream.events.common import (
        Shortage as Shortage,
    )
    from shopstream.events.common import (
        StockCount as StockCount,
    )
    from shopstream.events.common import (
        StockLevel as StockLevel,
    )
    from shopstream.events.common import (
        Text as Text,
    )
    from shopstream.events.common import (
        Version as Version,
    )
    from shopstream.events.inventory import (
        InventoryAdjusted as InventoryAdjusted,
    )
    from shopstream.events.inventory import (
        InventoryReleased as InventoryReleased,
    )
    from shopstream.events.inventory import (
        InventoryReservationFailed as InventoryReservationFailed,
    )
    from shopstream.events.inventory import (
        InventoryReserved as InventoryReserved,
    )
    from shopstream.events.notification import (
        NotificationFailed as NotificationFailed,
    )
    from shopstream.events.notification import (
        NotificationSent as NotificationSent,
    )
    from shopstream.events.order import (
        OrderCancellationRequested as OrderCancellationRequested,
    )
    from shopstream.events.order import (
        OrderCancelled as OrderCancelled,
    )
    from shopstream.events.order import (
        OrderConfirmed as OrderConfirmed,
    )
    from shopstream.events.order import (
        OrderCreated as OrderCreated,
    )
    from shopstream.events.order import (
        OrderCreatedV1 as OrderCreatedV1,
    )
    from shopstream.events.order import (
        OrderCreatedV2 as OrderCreatedV2,
    )
    from shopstream.events.order import (
        OrderShipped as OrderShipped,
    )
    from shopstream.events.payment import (
        PaymentAuthorised as PaymentAuthorised,
    )
    from shopstream.events.payment import (
        PaymentFailed as PaymentFailed,
    )
    from shopstream.events.payment import (
        PaymentInitiated as PaymentInitiated,
    )
    from shopstream.events.payment import (
        PaymentProcessed as PaymentProcessed,
    )
    from shopstream.events.payment import (
        PaymentRefunded as PaymentRefunded,
    )
    from shopstream.events.payment import (
        PaymentVoided as PaymentVoided,
    )
    from shopstream.events.shipping import (
        ShippingCancelled as ShippingCancelled,
    )
    from shopstream.events.shipping import (
        ShippingCreated as ShippingCreated,
    )
    from shopstream.events.shipping import (
        ShippingCreatedV1 as ShippingCreatedV1,
    )
    from shopstream.events.shipping import (
        ShippingCreatedV2 as ShippingCreatedV2,
    )
    from shopstream.events.shipping import (
        ShippingDelivered as ShippingDelivered,
    )
    from shopstream.events.shipping import (
        ShippingDispatched as ShippingDispatched,
    )
    from shopstream.events.user import (
        UserDeactivated as UserDeactivated,
    )
    from shopstream.events.user import (
        UserErased as UserErased,
    )
    from shopstream.events.user import (
        UserRegistered as UserRegistered,
    )
    from shopstream.events.user import (
        UserRegisteredV1 as UserRegisteredV1,
    )
    from shopstream.events.user import (
        UserRegisteredV2 as UserRegisteredV2,
    )
    from shopstream.events.user import (
        UserUpdated as UserUpdated,
    )
    from shopstream.events.user import (
        UserUpdatedV1 as UserUpdatedV1,
    )
    from shopstream.events.user import (
        UserUpdatedV2 as UserUpdatedV2,
    )


def module_of(name: str) -> str:
    """The module that defines an event model (or a shared type): ``shopstream.events.<topic>``."""
    return f"{__name__}.{_MODULE_OF[name]}"


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_of(name)), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
