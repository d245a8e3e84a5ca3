"""The shipping table: ``FULFILMENT#<orderId>/ORDER`` (what to ship) and ``SHIPMENT#<id>/SHIPMENT``."""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.outbox import UnitOfWork


def shipment_id_for(order_id: str) -> str:
    return f"shp_{order_id}"


def _fulfilment_key(order_id: str) -> dict[str, str]:
    return {"pk": f"FULFILMENT#{order_id}", "sk": "ORDER"}


def _shipment_key(shipment_id: str) -> dict[str, str]:
    return {"pk": f"SHIPMENT#{shipment_id}", "sk": "SHIPMENT"}


def get_fulfilment(order_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_fulfilment_key(order_id))


def get_shipment(shipment_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_shipment_key(shipment_id))


def record_fulfilment(uow: UnitOfWork, details: dict[str, Any]) -> None:
    uow.put({**_fulfilment_key(details["orderId"]), **details, "status": "AWAITING_PAYMENT"},
            condition="attribute_not_exists(pk)")


def close_fulfilment(uow: UnitOfWork, order_id: str, status: str) -> None:
    uow.update(_fulfilment_key(order_id), update="SET #status = :status",
               condition="#status = :awaiting", names={"#status": "status"},
               values={":status": status, ":awaiting": "AWAITING_PAYMENT"})


def create_shipment(uow: UnitOfWork, shipment: dict[str, Any]) -> None:
    uow.put({**_shipment_key(shipment["shipmentId"]), **shipment, "status": "CREATED"},
            condition="attribute_not_exists(pk)")


def move_shipment(uow: UnitOfWork, shipment_id: str, expected: str, status: str, **fields: Any) -> None:
    sets, names, values = dynamo.assignments({"status": status, **fields})
    uow.update(_shipment_key(shipment_id), update=f"SET {sets}", condition="#status = :expected",
               names=names, values={**values, ":expected": expected})
