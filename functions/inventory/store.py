"""The inventory table: ``STOCK#<productId>/STOCK``, ``RESERVATION#<orderId>/RESERVATION`` and
``ADJUSTMENT#<id>/ADJUSTMENT`` (adjustments made under an Idempotency-Key, kept two days).

Every stock change is conditioned on the version read, so concurrent reservations of the
same product cannot both succeed on the same units (no oversell).
"""

from __future__ import annotations

import time
from typing import Any

from shopstream import dynamo
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork


def _stock_key(product_id: str) -> Key:
    return {"pk": f"STOCK#{product_id}", "sk": "STOCK"}


def _reservation_key(order_id: str) -> Key:
    return {"pk": f"RESERVATION#{order_id}", "sk": "RESERVATION"}


def get_stock(product_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_stock_key(product_id))


def get_stocks(product_ids: list[str]) -> dict[str, dict[str, Any]]:
    found = dynamo.get_many([(f"STOCK#{p}", "STOCK") for p in product_ids])
    return {item["productId"]: item for item in found.values()}


def get_adjustment(adjustment_id: str) -> dict[str, Any] | None:
    return dynamo.get(f"ADJUSTMENT#{adjustment_id}", "ADJUSTMENT")


def record_adjustment(uow: UnitOfWork, adjustment_id: str, product_id: str, delta: int) -> None:
    """An adjustment made under an Idempotency-Key, so that a retry after a crash is not applied twice."""
    uow.put({"pk": f"ADJUSTMENT#{adjustment_id}", "sk": "ADJUSTMENT", "productId": product_id, "delta": delta,
             "ttl": int(time.time()) + 2 * 24 * 3600}, condition="attribute_not_exists(pk)")


def get_reservation(order_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_reservation_key(order_id))


def create_stock(uow: UnitOfWork, product_id: str) -> UnitOfWork:
    uow.put({**_stock_key(product_id), "productId": product_id, "available": 0, "reserved": 0, "sold": 0,
             "received": 0, "version": 1, "status": "ACTIVE"}, condition="attribute_not_exists(pk)")
    return uow


def discontinue_stock(uow: UnitOfWork, product_id: str) -> UnitOfWork:
    """Discontinued for good; creates the record (empty) if the product's creation is still on its way."""
    uow.update(_stock_key(product_id),
               update="SET #status = :discontinued, productId = :id, available = if_not_exists(available, :zero), "
                      "reserved = if_not_exists(reserved, :zero), sold = if_not_exists(sold, :zero), "
                      "received = if_not_exists(received, :zero), version = if_not_exists(version, :zero) + :one",
               condition="attribute_not_exists(pk) OR #status <> :discontinued", names={"#status": "status"},
               values={":discontinued": "DISCONTINUED", ":id": product_id, ":zero": 0, ":one": 1})
    return uow


def change_stock(uow: UnitOfWork, stock: dict[str, Any], *, available: int = 0, reserved: int = 0,
                 sold: int = 0, received: int = 0) -> None:
    """Apply deltas to the levels read in ``stock``; fails if anyone changed it since."""
    uow.update(
        _stock_key(stock["productId"]),
        update="SET available = available + :a, reserved = reserved + :r, sold = sold + :s, "
               "received = received + :rc, version = :next",
        condition="version = :read",
        values={":a": available, ":r": reserved, ":s": sold, ":rc": received,
                ":read": stock["version"], ":next": stock["version"] + 1},
    )


def create_reservation(uow: UnitOfWork, order_id: str, lines: list[dict[str, Any]], status: str) -> None:
    uow.put({**_reservation_key(order_id), "orderId": order_id, "lines": lines, "status": status},
            condition="attribute_not_exists(pk)")


def move_reservation(uow: UnitOfWork, order_id: str, expected: str, status: str) -> None:
    uow.update(_reservation_key(order_id), update="SET #status = :status", condition="#status = :expected",
               names={"#status": "status"}, values={":status": status, ":expected": expected})
