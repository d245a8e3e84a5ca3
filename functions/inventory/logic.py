"""Stock levels and order reservations.

stock per product:  received (all adjustments) = available + reserved + sold
reservation:        RESERVED -> COMMITTED (paid) | RELEASED;  COMMITTED -> RELEASED (refund restock);
                    FAILED (out of stock);  CANCELLED (the order was cancelled before it was reserved)
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from shopstream.consumer import InboundEvent, PoisonRecord
from shopstream.envelope import event_from_event
from shopstream.events import (
    InventoryAdjusted,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ItemQuantity,
    OrderCancelled,
    OrderCreated,
    PaymentFailed,
    PaymentProcessed,
    ProductCreated,
    ProductDiscontinued,
    Shortage,
    StockLevel,
)
from shopstream.request import Caller, Conflict, NotFound, commit
from shopstream.transaction import UnitOfWork, retry_on_conflict, try_commit

from . import store
from .models import Adjustment, StockView

SERVICE = "inventory"


def _level(stock: dict[str, Any], *, available: int = 0, reserved: int = 0, sold: int = 0) -> StockLevel:
    new_available, new_reserved = stock["available"] + available, stock["reserved"] + reserved
    return StockLevel(product_id=stock["productId"], quantity=new_available + new_reserved,
                      available=new_available, reserved=new_reserved, version=stock["version"] + 1)


def view(product_id: str) -> StockView:
    stock = store.get_stock(product_id)
    if stock is None:
        raise NotFound("no stock record for this product")
    return StockView(product_id=product_id, available=stock["available"], reserved=stock["reserved"])


def adjust(caller: Caller, product_id: str, body: Adjustment) -> StockView:
    adjustment_id = caller.derived_id("adj_") if caller.idempotency_key else None
    if adjustment_id and store.get_adjustment(adjustment_id) is not None:
        return view(product_id)  # made before under this Idempotency-Key (its response was lost)
    stock = store.get_stock(product_id)
    if stock is None:
        raise NotFound("no stock record for this product")
    if stock["status"] != "ACTIVE":
        raise Conflict("product is discontinued")
    if stock["available"] + body.delta < 0:
        raise Conflict(f"only {stock['available']} available; cannot remove {-body.delta}")
    uow = UnitOfWork()
    store.change_stock(uow, stock, available=body.delta, received=body.delta)
    if adjustment_id:
        store.record_adjustment(uow, adjustment_id, product_id, body.delta)
    level = _level(stock, available=body.delta)
    uow.emit(caller.command("InventoryAdjusted", InventoryAdjusted(product_id=product_id, delta=body.delta,
                                                                   reason=body.reason, level=level), SERVICE))
    commit(uow, status=200, conflict="stock changed meanwhile; retry")
    return StockView(product_id=product_id, available=level.available, reserved=level.reserved)


def on_product_event(event: InboundEvent) -> None:
    match event.data:
        case ProductCreated(product_id=product_id):
            try_commit(store.create_stock(UnitOfWork(), product_id))  # known already: nothing to do
        case ProductDiscontinued(product_id=product_id):
            # Also when ProductCreated has not arrived yet: the record starts out discontinued.
            try_commit(store.discontinue_stock(UnitOfWork(), product_id))
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def on_order_event(event: InboundEvent) -> None:
    match event.data:
        case OrderCreated() as created:
            reserve(event, created)
        case OrderCancelled(order_id=order_id, reason=reason):
            release(event, order_id, reason=reason)
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def on_payment_event(event: InboundEvent) -> None:
    match event.data:
        case PaymentProcessed(order_id=order_id):
            settle(order_id)
        case PaymentFailed(order_id=order_id):
            release(event, order_id, reason="payment_declined")
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def reserve(event: InboundEvent, created: OrderCreated) -> None:
    """Hold every line of the order, or none. A reservation record, whatever its status, means the
    order was decided before (a redelivery, or a cancellation that came first: nothing is taken)."""
    order_id = created.order_id
    wanted: Counter[str] = Counter()
    for item in created.items:
        wanted[item.product_id] += item.quantity
    lines = [ItemQuantity(product_id=p, quantity=q) for p, q in sorted(wanted.items())]

    def attempt() -> None:
        if store.get_reservation(order_id) is not None:
            return
        stocks = store.get_stocks(list(wanted))
        shortages = [Shortage(product_id=p, requested=q, available=stocks[p]["available"] if p in stocks else 0)
                     for p, q in wanted.items()
                     if p not in stocks or stocks[p]["status"] != "ACTIVE" or stocks[p]["available"] < q]
        uow = UnitOfWork()
        line_items = [line.to_wire() for line in lines]
        if shortages:
            store.create_reservation(uow, order_id, line_items, "FAILED")
            reason: Literal["out_of_stock", "unknown_product"] = (
                "unknown_product" if any(s.product_id not in stocks for s in shortages) else "out_of_stock")
            uow.emit(event_from_event(event.envelope, event_type="InventoryReservationFailed", service=SERVICE,
                                      data=InventoryReservationFailed(order_id=order_id, reason=reason,
                                                                      shortages=shortages)))
        else:
            levels = []
            for line in lines:
                store.change_stock(uow, stocks[line.product_id], available=-line.quantity, reserved=line.quantity)
                levels.append(_level(stocks[line.product_id], available=-line.quantity, reserved=line.quantity))
            store.create_reservation(uow, order_id, line_items, "RESERVED")
            uow.emit(event_from_event(event.envelope, event_type="InventoryReserved", service=SERVICE,
                                      data=InventoryReserved(order_id=order_id, lines=lines, levels=levels)))
        uow.commit()

    retry_on_conflict(attempt, what=f"reserve order {order_id}")


def release(event: InboundEvent, order_id: str, *, reason: str) -> None:
    """Put reserved (or sold, when a paid order is cancelled) units back on the shelf.

    A cancellation that arrives before the order's reservation leaves a CANCELLED tombstone, so
    the late OrderCreated takes nothing. Only OrderCancelled and PaymentFailed release: an order is
    never cancelled once its parcel left (shipping decides), so shipped units are never restocked.
    """

    def attempt() -> None:
        reservation = store.get_reservation(order_id)
        uow = UnitOfWork()
        if reservation is None:
            store.create_reservation(uow, order_id, [], "CANCELLED")
            uow.commit()
            return
        if reservation["status"] not in ("RESERVED", "COMMITTED"):
            return  # failed, released, or cancelled before it was made
        lines = [ItemQuantity.model_validate(line) for line in reservation["lines"]]
        stocks = store.get_stocks([line.product_id for line in lines])
        levels = []
        for line in lines:
            stock = stocks[line.product_id]
            if reservation["status"] == "RESERVED":
                store.change_stock(uow, stock, available=line.quantity, reserved=-line.quantity)
                levels.append(_level(stock, available=line.quantity, reserved=-line.quantity))
            else:
                store.change_stock(uow, stock, available=line.quantity, sold=-line.quantity)
                levels.append(_level(stock, available=line.quantity))
        store.move_reservation(uow, order_id, reservation["status"], "RELEASED")
        uow.emit(event_from_event(event.envelope, event_type="InventoryReleased", service=SERVICE,
                                  data=InventoryReleased(order_id=order_id, reason=reason, lines=lines,
                                                         levels=levels)))
        uow.commit()

    retry_on_conflict(attempt, what=f"release order {order_id}")


def settle(order_id: str) -> None:
    """Paid: reserved units become sold. A reservation released meanwhile stays released
    (the order was cancelled; payment refunds the charge)."""

    def attempt() -> None:
        reservation = store.get_reservation(order_id)
        if reservation is None or reservation["status"] != "RESERVED":
            return
        lines = [ItemQuantity.model_validate(line) for line in reservation["lines"]]
        stocks = store.get_stocks([line.product_id for line in lines])
        uow = UnitOfWork()
        for line in lines:
            store.change_stock(uow, stocks[line.product_id], reserved=-line.quantity, sold=line.quantity)
        store.move_reservation(uow, order_id, "RESERVED", "COMMITTED")
        uow.commit()

    retry_on_conflict(attempt, what=f"settle order {order_id}")
