"""The payment table: ``PAYMENT#<paymentId>/PAYMENT``, one payment per order (id derived from it).

``version`` guards every write: a payment changes only from the state it was read in.
"""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork


def payment_id_for(order_id: str) -> str:
    return f"pay_{order_id}"


def _key(payment_id: str) -> Key:
    return {"pk": f"PAYMENT#{payment_id}", "sk": "PAYMENT"}


def get(payment_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_key(payment_id))


def save(uow: UnitOfWork, payment: dict[str, Any], read_version: int) -> None:
    uow.put_versioned({**payment, **_key(payment["paymentId"])}, read_version)
