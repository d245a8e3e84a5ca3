"""The payment table: ``PAYMENT#<paymentId>/PAYMENT``; one payment per order (id derived from it)."""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.outbox import UnitOfWork


def payment_id_for(order_id: str) -> str:
    return f"pay_{order_id}"


def _key(payment_id: str) -> dict[str, str]:
    return {"pk": f"PAYMENT#{payment_id}", "sk": "PAYMENT"}


def get(payment_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_key(payment_id))


def create(uow: UnitOfWork, payment: dict[str, Any]) -> None:
    uow.put({**_key(payment["paymentId"]), **payment}, condition="attribute_not_exists(pk)")


def move(uow: UnitOfWork, payment_id: str, expected: str, status: str, **fields: Any) -> None:
    sets, names, values = dynamo.assignments({"status": status, **fields})
    uow.update(_key(payment_id), update=f"SET {sets}", condition="#status = :expected",
               names=names, values={**values, ":expected": expected})
