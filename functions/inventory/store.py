"""The inventory table.

STOCK#<productId>#<n> / SHARD         one of the product's stock counters (n < its ``shards``), each with
                                       its own levels and version, under a partition key of its own:
                                       reservations of one product spread over them instead of all
                                       writing one item (and one partition)
RESERVATION#<orderId> / RESERVATION    the order's lines, and the counters each was taken from
ADJUSTMENT#<id> / ADJUSTMENT           an adjustment made under an Idempotency-Key (kept two days)

Every counter change is conditioned on the version read, so concurrent reservations cannot both take
the same units; each counter stays >= 0 on its own, so neither can the product's sum (no oversell).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from shopstream import dynamo
from shopstream.dynamo import Key
from shopstream.events import ItemQuantity
from shopstream.transaction import UnitOfWork

LEVELS = ("available", "reserved", "sold", "received")


@dataclass(frozen=True)
class StockCounter:
    """One of a product's stock counters (STOCK#<productId>#<n> / SHARD), as read."""

    product_id: str
    shard: int  # its number
    shards: int  # how many the product has
    available: int
    reserved: int
    sold: int
    received: int  # = available + reserved + sold
    version: int
    status: str  # ACTIVE | DISCONTINUED


@dataclass(frozen=True)
class Stock:
    """A product's stock: the sum of its counters' levels; discontinued if any counter is."""

    product_id: str
    status: str
    available: int
    reserved: int
    sold: int
    received: int


@dataclass(frozen=True)
class Taken:
    """Units of a product a reservation holds on one of its counters."""

    product_id: str
    shard: int
    quantity: int


@dataclass(frozen=True)
class Reservation:
    """An order's reservation (RESERVATION#<orderId> / RESERVATION): RESERVED -> COMMITTED | RELEASED, ..."""

    order_id: str
    status: str
    lines: tuple[ItemQuantity, ...]
    taken: tuple[Taken, ...]  # the counters the lines were taken from (none unless RESERVED or after)


def _shard_key(product_id: str, shard: int) -> Key:
    return {"pk": f"STOCK#{product_id}#{shard:04d}", "sk": "SHARD"}


def _reservation_key(order_id: str) -> Key:
    return {"pk": f"RESERVATION#{order_id}", "sk": "RESERVATION"}


def _counter_of(item: dict[str, Any]) -> StockCounter:
    return StockCounter(product_id=item["productId"], shard=int(item["shard"]), shards=int(item["shards"]),
                   status=item["status"], version=int(item["version"]), **{level: int(item[level]) for level in LEVELS})


def get_shards(product_id: str, shards: int) -> list[StockCounter]:
    """The product's counters, by number (none: the product is unknown here); see ``get_shards_of``."""
    return get_shards_of([product_id], shards).get(product_id, [])


def get_shards_of(product_ids: list[str], shards: int) -> dict[str, list[StockCounter]]:
    """The counters of several products in one batch read: ``shards`` per product are asked for (the
    number products are created with); a product created with more has the rest read after."""
    def keys(product_id: str, numbers: range) -> set[tuple[str, str]]:
        return {(_shard_key(product_id, n)["pk"], "SHARD") for n in numbers}

    wanted = set().union(*(keys(p, range(shards)) for p in product_ids))
    found = dynamo.get_many(sorted(wanted))
    more = set().union(*(keys(i["productId"], range(int(i["shards"]))) for i in found.values())) - wanted
    if more:
        found |= dynamo.get_many(sorted(more))
    by_product: dict[str, list[StockCounter]] = {}
    for counter in sorted(map(_counter_of, found.values()), key=lambda c: c.shard):
        by_product.setdefault(counter.product_id, []).append(counter)
    return by_product


def get_shard_items(keys: list[tuple[str, int]]) -> dict[tuple[str, int], StockCounter]:
    """Counters by (product, number), in one batch read."""
    found = dynamo.get_many([(key["pk"], key["sk"]) for key in (_shard_key(p, n) for p, n in keys)])
    return {(c.product_id, c.shard): c for c in map(_counter_of, found.values())}


def total(shards: list[StockCounter]) -> Stock:
    """A product's stock: the sum of its counters' levels; discontinued if any counter is."""
    status = "DISCONTINUED" if any(s.status != "ACTIVE" for s in shards) else "ACTIVE"
    return Stock(product_id=shards[0].product_id, status=status,
                 **{level: sum(getattr(s, level) for s in shards) for level in LEVELS})


def get_stock(product_id: str, shards: int) -> Stock | None:
    """The product's stock summed over its counters (None: unknown here)."""
    found = get_shards(product_id, shards)
    return total(found) if found else None


def adjustment_made(adjustment_id: str) -> bool:
    return dynamo.get(f"ADJUSTMENT#{adjustment_id}", "ADJUSTMENT") is not None


def record_adjustment(uow: UnitOfWork, adjustment_id: str, product_id: str, delta: int) -> None:
    """An adjustment made under an Idempotency-Key, so that a retry after a crash is not applied twice."""
    uow.put({"pk": f"ADJUSTMENT#{adjustment_id}", "sk": "ADJUSTMENT", "productId": product_id, "delta": delta,
             "ttl": int(time.time()) + 2 * 24 * 3600}, condition="attribute_not_exists(pk)")


def get_reservation(order_id: str) -> Reservation | None:
    item = dynamo.get(**_reservation_key(order_id))
    if item is None:
        return None
    return Reservation(order_id=order_id, status=item["status"],
                       lines=tuple(ItemQuantity.model_validate(line) for line in item.get("lines", [])),
                       taken=tuple(Taken(t["productId"], int(t["shard"]), int(t["quantity"]))
                                   for t in item.get("taken", [])))


def create_stock(uow: UnitOfWork, product_id: str, shards: int) -> UnitOfWork:
    """The product's counters, empty (the transaction fails if it has them already)."""
    for shard in range(shards):
        uow.put({**_shard_key(product_id, shard), "productId": product_id, "shard": shard, "shards": shards,
                 **dict.fromkeys(LEVELS, 0), "version": 1, "status": "ACTIVE"}, condition="attribute_not_exists(pk)")
    return uow


def discontinue_stock(uow: UnitOfWork, product_id: str, shards: int) -> UnitOfWork:
    """Discontinued for good, every counter of it; creates them (empty) if the product's creation is
    still on its way. Fails if it was discontinued before."""
    for shard in range(shards):
        uow.update(_shard_key(product_id, shard),
                   update="SET #status = :discontinued, productId = :id, #shard = :shard, #shards = :shards, "
                          "available = if_not_exists(available, :zero), reserved = if_not_exists(reserved, :zero), "
                          "sold = if_not_exists(sold, :zero), received = if_not_exists(received, :zero), "
                          "version = if_not_exists(version, :zero) + :one",
                   condition="attribute_not_exists(pk) OR #status <> :discontinued",
                   names={"#status": "status", "#shard": "shard", "#shards": "shards"},
                   values={":discontinued": "DISCONTINUED", ":id": product_id, ":shard": shard, ":shards": shards,
                           ":zero": 0, ":one": 1})
    return uow


def change_shard(uow: UnitOfWork, shard: StockCounter, *, available: int = 0, reserved: int = 0,
                 sold: int = 0, received: int = 0) -> None:
    """Apply deltas to the levels read in ``shard`` (a counter); fails if anyone changed it since."""
    uow.update(
        _shard_key(shard.product_id, shard.shard),
        update="SET available = available + :a, reserved = reserved + :r, sold = sold + :s, "
               "received = received + :rc, version = :next",
        condition="version = :read",
        values={":a": available, ":r": reserved, ":s": sold, ":rc": received,
                ":read": shard.version, ":next": shard.version + 1},
    )


def create_reservation(uow: UnitOfWork, reservation: Reservation) -> None:
    taken = [{"productId": t.product_id, "shard": t.shard, "quantity": t.quantity} for t in reservation.taken]
    uow.put({**_reservation_key(reservation.order_id), "orderId": reservation.order_id,
             "lines": [line.to_wire() for line in reservation.lines], "taken": taken, "status": reservation.status},
            condition="attribute_not_exists(pk)")


def move_reservation(uow: UnitOfWork, order_id: str, expected: str, status: str) -> None:
    uow.update(_reservation_key(order_id), update="SET #status = :status", condition="#status = :expected",
               names={"#status": "status"}, values={":status": status, ":expected": expected})
