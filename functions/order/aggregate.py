"""The Order aggregate: pure state, events and transitions (no I/O).

State is the fold of the aggregate's own events; a transition that does not fit the current
state produces no event, so a late, duplicate or out-of-order input never moves an order
backwards or twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

TERMINAL = frozenset({"DELIVERED", "CANCELLED"})
CANCELLABLE = frozenset({"PENDING", "CONFIRMED"})


@dataclass(frozen=True)
class Change:
    """One stored event of the aggregate (kind + data)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Order:
    order_id: str
    version: int = 0
    status: str = "NEW"
    user_id: str = ""
    items: tuple[dict[str, Any], ...] = ()
    total: dict[str, Any] = field(default_factory=dict)
    payment_method: str = ""
    shipping_address: dict[str, Any] = field(default_factory=dict)
    cart_id: str | None = None
    correlation_id: str = ""
    stock_reserved: bool = False
    payment_id: str | None = None
    shipment_id: str | None = None
    cancellation_reason: str | None = None
    refunded: bool = False
    created_at: str = ""
    updated_at: str = ""
    deadline: str = ""


def evolve(order: Order, change: Change, at: str) -> Order:
    d = change.data
    order = replace(order, version=order.version + 1, updated_at=at)
    match change.kind:
        case "Placed":
            return replace(order, status="PENDING", user_id=d["userId"], items=tuple(d["items"]), total=d["total"],
                           payment_method=d["paymentMethod"], shipping_address=d["shippingAddress"],
                           cart_id=d.get("cartId"), correlation_id=d["correlationId"], created_at=at,
                           deadline=d["deadline"])
        case "StockReserved":
            return replace(order, stock_reserved=True)
        case "Confirmed":
            return replace(order, status="CONFIRMED", payment_id=d["paymentId"])
        case "Cancelled":
            return replace(order, status="CANCELLED", cancellation_reason=d["reason"])
        case "ShipmentCreated":
            return replace(order, shipment_id=d["shipmentId"])
        case "Shipped":
            return replace(order, status="SHIPPED", shipment_id=d["shipmentId"])
        case "Delivered":
            return replace(order, status="DELIVERED")
        case "Refunded":
            return replace(order, refunded=True)
    raise ValueError(f"unknown order change {change.kind}")


def fold(order_id: str, history: list[tuple[Change, str]]) -> Order:
    order = Order(order_id=order_id)
    for change, at in history:
        order = evolve(order, change, at)
    return order


# --- decisions: what a command or an input event changes ---------------------------------
def stock_reserved(order: Order) -> list[Change]:
    return [Change("StockReserved")] if order.status == "PENDING" and not order.stock_reserved else []


def confirm(order: Order, payment_id: str) -> list[Change]:
    return [Change("Confirmed", {"paymentId": payment_id})] if order.status == "PENDING" else []


def cancel(order: Order, reason: str) -> list[Change]:
    return [Change("Cancelled", {"reason": reason})] if order.status in CANCELLABLE else []


def shipment_created(order: Order, shipment_id: str) -> list[Change]:
    return [Change("ShipmentCreated", {"shipmentId": shipment_id})] if order.shipment_id is None else []


def shipped(order: Order, shipment_id: str) -> list[Change]:
    return [Change("Shipped", {"shipmentId": shipment_id})] if order.status == "CONFIRMED" else []


def delivered(order: Order) -> list[Change]:
    return [Change("Delivered")] if order.status == "SHIPPED" else []


def refunded(order: Order) -> list[Change]:
    return [Change("Refunded")] if not order.refunded else []
