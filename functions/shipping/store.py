"""The shipping table.

FULFILMENT#<orderId> / ORDER   what shipping knows of an order, merged from its events in any order:
                               the parcel's contents (OrderCreated), paid (OrderConfirmed), cancelled
                               (OrderCancelled / a cancellation request); ``version`` guards each write.
SHIPMENT#<shipmentId> / SHIPMENT   the parcel: CREATED -> DISPATCHED -> DELIVERED, or CREATED -> CANCELLED.
Both keep the address sealed for the customer (shopstream.personal): unreadable once they are erased.
"""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork


def shipment_id_for(order_id: str) -> str:
    return f"shp_{order_id}"


def _fulfilment_key(order_id: str) -> Key:
    return {"pk": f"FULFILMENT#{order_id}", "sk": "ORDER"}


def _shipment_key(shipment_id: str) -> Key:
    return {"pk": f"SHIPMENT#{shipment_id}", "sk": "SHIPMENT"}


def get_fulfilment(order_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_fulfilment_key(order_id))


def get_shipment(shipment_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_shipment_key(shipment_id))


def save_fulfilment(uow: UnitOfWork, fulfilment: dict[str, Any], read_version: int) -> None:
    """Write the merged fulfilment, if nobody changed it since it was read (version 0: absent)."""
    uow.put_versioned({**fulfilment, **_fulfilment_key(fulfilment["orderId"])}, read_version)


def create_shipment(uow: UnitOfWork, shipment: dict[str, Any]) -> None:
    uow.put({**_shipment_key(shipment["shipmentId"]), **shipment, "status": "CREATED"},
            condition="attribute_not_exists(pk)")


def move_shipment(uow: UnitOfWork, shipment_id: str, expected: str, status: str, **fields: Any) -> None:
    sets, names, values = dynamo.assignments({"status": status, **fields})
    uow.update(_shipment_key(shipment_id), update=f"SET {sets}", condition="#status = :expected",
               names=names, values={**values, ":expected": expected})
