"""Stock levels and order reservations.

stock per product:  received (all adjustments) = available + reserved + sold
reservation:        RESERVED -> COMMITTED (paid) | RELEASED;  COMMITTED -> RELEASED (refund restock)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from shopstream.api import Caller, Conflict, NotFound, commit
from shopstream.consumer import InboundEvent
from shopstream.envelope import event_from_event
from shopstream.events import (
    InventoryAdjusted,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ItemQuantity,
    Shortage,
    StockLevel,
)
from shopstream.outbox import ConditionFailed, UnitOfWork

from . import store
from .models import Adjustment, StockView

SERVICE = "inventory"
MAX_ATTEMPTS = 25  # optimistic retries under contention before giving the batch back to the ESM


class Contention(RuntimeError):
    """Retried by the event source mapping (transient)."""


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
    caller.require_admin()
    stock = store.get_stock(product_id)
    if stock is None:
        raise NotFound("no stock record for this product")
    if stock["status"] != "ACTIVE":
        raise Conflict("product is discontinued")
    if stock["available"] + body.delta < 0:
        raise Conflict(f"only {stock['available']} available; cannot remove {-body.delta}")
    uow = UnitOfWork()
    store.change_stock(uow, stock, available=body.delta, received=body.delta)
    level = _level(stock, available=body.delta)
    uow.emit(caller.command("InventoryAdjusted", InventoryAdjusted(product_id=product_id, delta=body.delta,
                                                                   reason=body.reason, level=level), SERVICE))
    try:
        commit(uow, status=200)
    except ConditionFailed:
        raise Conflict("stock changed meanwhile; retry") from None
    return StockView(product_id=product_id, available=level.available, reserved=level.reserved)


def on_product_event(event: InboundEvent) -> None:
    uow = UnitOfWork()
    if event.event_type == "ProductCreated":
        store.create_stock(uow, event.data.product_id)
    else:
        store.set_stock_status(uow, event.data.product_id, "DISCONTINUED")
    try:
        uow.commit()
    except ConditionFailed:
        pass  # already known / unknown product: nothing to do


def on_order_event(event: InboundEvent) -> None:
    if event.event_type == "OrderCreated":
        reserve(event)
    else:
        release(event, reason=event.data.reason)


def on_payment_event(event: InboundEvent) -> None:
    if event.event_type == "PaymentProcessed":
        _settle(event)
    else:
        release(event, reason="payment_declined")


def reserve(event: InboundEvent) -> None:
    order_id = event.data.order_id
    wanted = Counter()
    for item in event.data.items:
        wanted[item.product_id] += item.quantity
    lines = [ItemQuantity(product_id=p, quantity=q) for p, q in sorted(wanted.items())]
    for _ in range(MAX_ATTEMPTS):
        if store.get_reservation(order_id) is not None:
            return  # decided before (redelivery)
        stocks = store.get_stocks(list(wanted))
        shortages = [Shortage(product_id=p, requested=q, available=stocks[p]["available"] if p in stocks else 0)
                     for p, q in wanted.items()
                     if p not in stocks or stocks[p]["status"] != "ACTIVE" or stocks[p]["available"] < q]
        uow = UnitOfWork()
        line_items = [line.to_wire() for line in lines]
        if shortages:
            store.create_reservation(uow, order_id, line_items, "FAILED")
            reason = "unknown_product" if any(s.product_id not in stocks for s in shortages) else "out_of_stock"
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
        try:
            uow.commit()
            return
        except ConditionFailed:
            continue  # another reservation changed one of these products: read again
    raise Contention(f"could not reserve order {order_id} after {MAX_ATTEMPTS} attempts")


def release(event: InboundEvent, *, reason: str) -> None:
    """Put reserved (or sold, when a paid order is cancelled) units back on the shelf."""
    order_id = event.data.order_id
    for _ in range(MAX_ATTEMPTS):
        reservation = store.get_reservation(order_id)
        if reservation is None or reservation["status"] not in ("RESERVED", "COMMITTED"):
            return  # never reserved, failed, or already released
        lines = [ItemQuantity.model_validate(line) for line in reservation["lines"]]
        stocks = store.get_stocks([line.product_id for line in lines])
        uow = UnitOfWork()
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
        try:
            uow.commit()
            return
        except ConditionFailed:
            continue
    raise Contention(f"could not release order {order_id}")


def _settle(event: InboundEvent) -> None:
    """Paid: reserved units become sold."""
    order_id = event.data.order_id
    for _ in range(MAX_ATTEMPTS):
        reservation = store.get_reservation(order_id)
        if reservation is None or reservation["status"] != "RESERVED":
            return
        lines = [ItemQuantity.model_validate(line) for line in reservation["lines"]]
        stocks = store.get_stocks([line.product_id for line in lines])
        uow = UnitOfWork()
        for line in lines:
            store.change_stock(uow, stocks[line.product_id], reserved=-line.quantity, sold=line.quantity)
        store.move_reservation(uow, order_id, "RESERVED", "COMMITTED")
        try:
            uow.commit()
            return
        except ConditionFailed:
            continue
    raise Contention(f"could not settle order {order_id}")
