"""The Order aggregate: pure state, events and transitions (no I/O).

State is the fold of the aggregate's own events; a transition that does not fit the current
state produces no event, so a late, duplicate or out-of-order input never moves an order
backwards or twice.

Cancel vs dispatch: a PENDING order has no parcel yet (shipping creates one only after
OrderConfirmed), so the order service cancels it on its own. A CONFIRMED order's parcel is
shipping's to give up: the customer's cancel becomes a request, and the order is cancelled
only when shipping has cancelled the parcel (ShippingCancelled); a dispatch that shipping
accepted first refuses the request (the order ships).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

TERMINAL = frozenset({"DELIVERED", "CANCELLED"})
# The statuses an order can move to from each (the transitions below; tests hold them to it). DELIVERED may
# follow CONFIRMED directly: a delivery reported before its dispatch.
NEXT_STATUSES: dict[str, frozenset[str]] = {
    "PENDING": frozenset({"CONFIRMED", "CANCELLED"}),
    "CONFIRMED": frozenset({"SHIPPED", "DELIVERED", "CANCELLED"}),
    "SHIPPED": frozenset({"DELIVERED"}),
}


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
    trace_id: str | None = None  # the trace of the request that placed it (shopstream.tracing)
    stock_reserved: bool = False
    payment_authorised: bool = False
    payment_id: str | None = None
    shipment_id: str | None = None
    cancellation_reason: str | None = None
    cancellation_requested: bool = False
    dispatched: bool = False
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
                           deadline=d["deadline"], trace_id=d.get("traceId"))
        case "StockReserved":
            return replace(order, stock_reserved=True)
        case "PaymentAuthorised":
            return replace(order, payment_authorised=True, payment_id=d["paymentId"])
        case "Confirmed":
            return replace(order, status="CONFIRMED", payment_id=d["paymentId"])
        case "Cancelled":
            return replace(order, status="CANCELLED", cancellation_reason=d["reason"], cancellation_requested=False)
        case "CancellationRequested":
            return replace(order, cancellation_requested=True)
        case "ShipmentCreated":
            return replace(order, shipment_id=d["shipmentId"])
        case "Shipped":
            # A delivery reported before its dispatch already moved the order on: keep DELIVERED.
            status = "SHIPPED" if order.status == "CONFIRMED" else order.status
            return replace(order, status=status, shipment_id=d["shipmentId"], dispatched=True,
                           cancellation_requested=False)
        case "Delivered":
            return replace(order, status="DELIVERED", cancellation_requested=False)
        case "Refunded":
            return replace(order, refunded=True)
    raise ValueError(f"unknown order change {change.kind}")


def fold(order_id: str, history: list[tuple[Change, str]]) -> Order:
    order = Order(order_id=order_id)
    for change, at in history:
        order = evolve(order, change, at)
    return order


# --- decisions: what a command or an input event changes ---------------------------------
# A PENDING order is confirmed once it has both facts, the stock reserved and the payment authorised, whichever
# arrives last (they are sought side by side: docs/decisions.md).
def stock_reserved(order: Order) -> list[Change]:
    if order.status != "PENDING" or order.stock_reserved:
        return []
    confirmed = [Change("Confirmed", {"paymentId": order.payment_id})] if order.payment_authorised else []
    return [Change("StockReserved"), *confirmed]


def payment_authorised(order: Order, payment_id: str) -> list[Change]:
    if order.status != "PENDING" or order.payment_authorised:
        return []
    confirmed = [Change("Confirmed", {"paymentId": payment_id})] if order.stock_reserved else []
    return [Change("PaymentAuthorised", {"paymentId": payment_id}), *confirmed]


def cancel(order: Order, reason: str) -> list[Change]:
    """The saga gives up (out of stock, declined, timeout): only while nothing was confirmed."""
    return [Change("Cancelled", {"reason": reason})] if order.status == "PENDING" else []


def request_cancel(order: Order) -> list[Change]:
    """The customer's cancel: immediate while PENDING; a request to shipping once CONFIRMED."""
    if order.status == "PENDING":
        return [Change("Cancelled", {"reason": "customer_request"})]
    if order.status == "CONFIRMED" and not order.cancellation_requested:
        return [Change("CancellationRequested", {"reason": "customer_request"})]
    return []


def cancellable(order: Order) -> bool:
    return order.status in ("PENDING", "CONFIRMED")


def shipment_cancelled(order: Order) -> list[Change]:
    """Shipping gave the parcel up at our request: the order is cancelled (refund, restock follow)."""
    if order.status == "CONFIRMED" and order.cancellation_requested:
        return [Change("Cancelled", {"reason": "customer_request"})]
    return []


def shipment_created(order: Order, shipment_id: str) -> list[Change]:
    return [Change("ShipmentCreated", {"shipmentId": shipment_id})] if order.shipment_id is None else []


def shipped(order: Order, shipment_id: str) -> list[Change]:
    if order.dispatched or order.status not in ("CONFIRMED", "DELIVERED"):
        return []
    return [Change("Shipped", {"shipmentId": shipment_id})]


def delivered(order: Order) -> list[Change]:
    return [Change("Delivered")] if order.status in ("CONFIRMED", "SHIPPED") else []


def refunded(order: Order) -> list[Change]:
    return [Change("Refunded")] if not order.refunded else []


# --- waiting for a status (GET /orders/{orderId}?waitFor=...) --------------------------------
def reachable(status: str) -> frozenset[str]:
    """Every status the order can still come to from ``status`` (not counting itself)."""
    found: set[str] = set()
    frontier = set(NEXT_STATUSES.get(status, ()))
    while frontier:
        found |= frontier
        frontier = {n for s in frontier for n in NEXT_STATUSES.get(s, ())} - found
    return frozenset(found)


def wait_outcome(status: str, awaited: frozenset[str]) -> Literal["reached", "unreachable"] | None:
    """``reached``: the order is in an awaited status; ``unreachable``: it can never come to one (e.g. CANCELLED
    while CONFIRMED is awaited, or SHIPPED: past it); None: still to be seen."""
    if status in awaited:
        return "reached"
    if not awaited & reachable(status):
        return "unreachable"
    return None
