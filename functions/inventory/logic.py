"""Stock levels and order reservations.

stock per counter:  received (all adjustments) = available + reserved + sold, each level >= 0;
                    a product's stock is the sum of its counters (store.py)
reservation:        RESERVED -> COMMITTED (paid) | RELEASED;  COMMITTED -> RELEASED (refund restock);
                    FAILED (out of stock);  CANCELLED (the order was cancelled before it was reserved)
"""

from __future__ import annotations

import zlib
from collections import Counter
from typing import Literal

from shopstream.envelope import EventEnvelope, event_from_event
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
from shopstream.inbound import InboundEvent, PoisonRecord
from shopstream.request import Caller, Conflict, NotFound, commit
from shopstream.transaction import ConditionFailed, UnitOfWork, retry_on_conflict, try_commit

from . import store
from .models import Adjustment, StockView
from .settings import settings
from .store import Reservation, StockCounter, Taken

SERVICE = "inventory"


def _level(shard: StockCounter, *, available: int = 0, reserved: int = 0) -> StockLevel:
    """The counter's level after the change (its version: the one this change writes)."""
    new_available, new_reserved = shard.available + available, shard.reserved + reserved
    return StockLevel(product_id=shard.product_id, shard=shard.shard, quantity=new_available + new_reserved,
                      available=new_available, reserved=new_reserved, version=shard.version + 1)


def view(product_id: str) -> StockView:
    stock = store.get_stock(product_id, settings().inventory_stock_shards)
    if stock is None:
        raise NotFound("no stock record for this product")
    return StockView(product_id=product_id, available=stock.available, reserved=stock.reserved)


def spread(delta: int, shards: list[StockCounter]) -> list[tuple[StockCounter, int]]:
    """How an adjustment of ``delta`` units is split over the counters: units added go to the emptiest
    first so that every counter can serve reservations; units removed come from the fullest first.
    Only counters that change are listed."""
    order = sorted(shards, key=lambda s: (s.available, s.shard), reverse=delta < 0)
    if delta < 0:
        return _draw(order, -delta)
    even, extra = divmod(delta, len(order))
    return [(shard, units) for i, shard in enumerate(order) if (units := even + (i < extra))]


def _draw(counters: list[StockCounter], units: int) -> list[tuple[StockCounter, int]]:
    """``units`` taken from ``counters`` in their order, each giving what it holds until enough: (counter,
    -units it gives), only those that give."""
    taken: list[tuple[StockCounter, int]] = []
    for counter in counters:
        give = min(units, counter.available)
        if give:
            taken.append((counter, -give))
            units -= give
    return taken


def _chosen(order_id: str, shards: list[StockCounter]) -> int:
    """The counter an order's lines start from: by its id, so that orders of one product spread."""
    return zlib.crc32(order_id.encode()) % len(shards)


def adjust(caller: Caller, product_id: str, body: Adjustment) -> StockView:
    """Units received or written off: split over the product's counters, an InventoryAdjusted per counter.
    A counter changed by a reservation meanwhile makes the attempt read again (bounded)."""
    adjustment_id = caller.derived_id("adj_") if caller.idempotency_key else None

    def attempt() -> StockView:
        # Made before under this Idempotency-Key: this very request (its binding: this product and body, kept
        # for good), or found by its adjustment record (kept two days; shopstream.api refuses the answer if the
        # key is bound to another request, e.g. another product's adjustment that committed first).
        if caller.repeat_of_bound_request or (adjustment_id and store.adjustment_made(adjustment_id)):
            return view(product_id)
        shards = store.get_shards(product_id, settings().inventory_stock_shards)
        if not shards:
            raise NotFound("no stock record for this product")
        stock = store.total(shards)
        if stock.status != "ACTIVE":
            raise Conflict("product is discontinued")
        if stock.available + body.delta < 0:
            raise Conflict(f"only {stock.available} available; cannot remove {-body.delta}")
        uow = UnitOfWork()
        for shard, units in spread(body.delta, shards):
            store.change_shard(uow, shard, available=units, received=units)
            uow.emit(caller.command("InventoryAdjusted", InventoryAdjusted(
                product_id=product_id, delta=units, reason=body.reason, level=_level(shard, available=units)),
                SERVICE))
        if adjustment_id:
            store.record_adjustment(uow, adjustment_id, product_id, body.delta)
        # ConditionFailed: a counter changed, or the same request got there first (then a repeat: commit says so)
        commit(uow, status=200)
        return StockView(product_id=product_id, available=stock.available + body.delta, reserved=stock.reserved)

    adjusted = retry_on_conflict(attempt, what=f"adjusting the stock of {product_id}")
    assert adjusted is not None
    return adjusted


def on_product_event(event: InboundEvent) -> None:
    match event.data:
        case ProductCreated(product_id=product_id):
            try_commit(store.create_stock(UnitOfWork(), product_id, settings().inventory_stock_shards))  # known
        case ProductDiscontinued(product_id=product_id):
            # Also when ProductCreated has not arrived yet: the counters start out discontinued.
            existing = store.get_shards(product_id, settings().inventory_stock_shards)
            shards = existing[0].shards if existing else settings().inventory_stock_shards
            try_commit(store.discontinue_stock(UnitOfWork(), product_id, shards))
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


def pick(order_id: str, shards: list[StockCounter], quantity: int) -> StockCounter | None:
    """The counter a line is taken from, whole: the one the order id chooses (orders of one product
    spread over its counters) if it holds enough, else the next one that does; None if none does."""
    start = _chosen(order_id, shards)
    return next((shard for shard in shards[start:] + shards[:start] if shard.available >= quantity), None)


def consolidate(cause: EventEnvelope, order_id: str, shards: list[StockCounter], quantity: int) -> None:
    """Move units between a product's counters so that the one the order id chooses holds ``quantity``
    (the product holds enough, but spread thinner than that): one transaction, the fullest counters
    first, an InventoryAdjusted (reason "rebalanced") for each counter it changes. Nothing is created or
    lost: units move with their receipt (each counter keeps received = available + reserved + sold)."""
    into = shards[_chosen(order_id, shards)]
    fullest_first = sorted((s for s in shards if s is not into), key=lambda s: -s.available)
    moves = _draw(fullest_first, quantity - into.available)
    moves.append((into, -sum(units for _, units in moves)))
    uow = UnitOfWork()
    for shard, units in moves:
        store.change_shard(uow, shard, available=units, received=units)
        uow.emit(event_from_event(cause, event_type="InventoryAdjusted", service=SERVICE, data=InventoryAdjusted(
            product_id=shard.product_id, delta=units, reason="rebalanced", level=_level(shard, available=units))))
    uow.commit()


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
        counters = store.get_shards_of(list(wanted), settings().inventory_stock_shards)
        stocks = {p: store.total(shards) for p, shards in counters.items()}
        shortages = [Shortage(product_id=p, requested=q, available=stocks[p].available if p in stocks else 0)
                     for p, q in wanted.items()
                     if p not in stocks or stocks[p].status != "ACTIVE" or stocks[p].available < q]
        uow = UnitOfWork()
        if shortages:
            store.create_reservation(uow, Reservation(order_id, "FAILED", tuple(lines), taken=()))
            reason: Literal["out_of_stock", "unknown_product"] = (
                "unknown_product" if any(s.product_id not in stocks for s in shortages) else "out_of_stock")
            uow.emit(event_from_event(event.envelope, event_type="InventoryReservationFailed", service=SERVICE,
                                      data=InventoryReservationFailed(order_id=order_id, reason=reason,
                                                                      shortages=shortages)))
        else:
            picked = {line.product_id: pick(order_id, counters[line.product_id], line.quantity) for line in lines}
            scattered = [line for line in lines if picked[line.product_id] is None]
            for line in scattered:  # enough units, but no counter holds them all: gather them, then read again
                consolidate(event.envelope, order_id, counters[line.product_id], line.quantity)
            if scattered:
                raise ConditionFailed([])
            levels, taken = [], []
            for line in lines:
                shard = picked[line.product_id]
                assert shard is not None
                store.change_shard(uow, shard, available=-line.quantity, reserved=line.quantity)
                levels.append(_level(shard, available=-line.quantity, reserved=line.quantity))
                taken.append(Taken(line.product_id, shard.shard, line.quantity))
            store.create_reservation(uow, Reservation(order_id, "RESERVED", tuple(lines), tuple(taken)))
            uow.emit(event_from_event(event.envelope, event_type="InventoryReserved", service=SERVICE,
                                      data=InventoryReserved(order_id=order_id, lines=lines, levels=levels)))
        uow.commit()

    retry_on_conflict(attempt, what=f"reserve order {order_id}")


def release(event: InboundEvent, order_id: str, *, reason: str) -> None:
    """Put reserved (or sold, when a paid order is cancelled) units back on the counters they came from.

    A cancellation that arrives before the order's reservation leaves a CANCELLED tombstone, so
    the late OrderCreated takes nothing. Only OrderCancelled and PaymentFailed release: an order is
    never cancelled once its parcel left (shipping decides), so shipped units are never restocked.
    """

    def attempt() -> None:
        reservation = store.get_reservation(order_id)
        uow = UnitOfWork()
        if reservation is None:
            store.create_reservation(uow, Reservation(order_id, "CANCELLED", lines=(), taken=()))
            uow.commit()
            return
        if reservation.status not in ("RESERVED", "COMMITTED"):
            return  # failed, released, or cancelled before it was made
        shards = store.get_shard_items([(t.product_id, t.shard) for t in reservation.taken])
        levels = []
        for taken in reservation.taken:
            shard, units = shards[(taken.product_id, taken.shard)], taken.quantity
            if reservation.status == "RESERVED":
                store.change_shard(uow, shard, available=units, reserved=-units)
                levels.append(_level(shard, available=units, reserved=-units))
            else:
                store.change_shard(uow, shard, available=units, sold=-units)
                levels.append(_level(shard, available=units))
        store.move_reservation(uow, order_id, reservation.status, "RELEASED")
        uow.emit(event_from_event(event.envelope, event_type="InventoryReleased", service=SERVICE,
                                  data=InventoryReleased(order_id=order_id, reason=reason,
                                                         lines=list(reservation.lines), levels=levels)))
        uow.commit()

    retry_on_conflict(attempt, what=f"release order {order_id}")


def settle(order_id: str) -> None:
    """Paid: reserved units become sold, on the counters they were taken from. A reservation released
    meanwhile stays released (the order was cancelled; payment refunds the capture)."""

    def attempt() -> None:
        reservation = store.get_reservation(order_id)
        if reservation is None or reservation.status != "RESERVED":
            return
        shards = store.get_shard_items([(t.product_id, t.shard) for t in reservation.taken])
        uow = UnitOfWork()
        for taken in reservation.taken:
            store.change_shard(uow, shards[(taken.product_id, taken.shard)], reserved=-taken.quantity,
                               sold=taken.quantity)
        store.move_reservation(uow, order_id, "RESERVED", "COMMITTED")
        uow.commit()

    retry_on_conflict(attempt, what=f"settle order {order_id}")
