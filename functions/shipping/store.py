"""The shipping table.

FULFILMENT#<orderId> / ORDER   what shipping knows of an order, merged from its events in any order:
                               the parcel's contents (OrderCreated), paid (OrderConfirmed), cancelled
                               (OrderCancelled / a cancellation request); ``version`` guards each write.
SHIPMENT#<shipmentId> / SHIPMENT   the parcel: CREATED -> DISPATCHED -> DELIVERED, or CREATED -> CANCELLED.
Both keep the address sealed for the customer (shopstream.personal): unreadable once they are erased.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True)
class Fulfilment:
    """What shipping knows of an order (FULFILMENT#<orderId> / ORDER), merged from its events in any order."""

    order_id: str
    status: str = "AWAITING_PAYMENT"  # -> SHIPMENT_CREATED, or CANCELLED
    version: int = 0  # 0: not stored yet
    user_id: str = ""  # "": not learnt yet (every event about the order carries it)
    address: Any = None  # sealed for the customer (shopstream.personal)
    items: tuple[dict[str, Any], ...] | None = None  # the parcel's contents, once OrderCreated is known
    confirmed: bool = False  # paid
    cancelled: bool = False
    cancellation_requested: bool = False
    request_answered: bool = False  # a cancellation request was answered (cancelled, or refused: the parcel left)
    other: dict[str, Any] = field(default_factory=dict)  # attributes this code does not know, kept as they are

    def merged(self, **facts: Any) -> Fulfilment:
        """With the facts of an event; the customer is the first one learnt."""
        if self.user_id:
            facts.pop("user_id", None)
        return replace(self, **facts)


_ATTRIBUTES = {"orderId": "order_id", "status": "status", "version": "version", "userId": "user_id",
               "address": "address", "items": "items", "confirmed": "confirmed", "cancelled": "cancelled",
               "cancellationRequested": "cancellation_requested", "requestAnswered": "request_answered"}


def get_fulfilment(order_id: str) -> Fulfilment:
    item = dynamo.get(**_fulfilment_key(order_id))
    if item is None:
        return Fulfilment(order_id)
    known = {_ATTRIBUTES[k]: v for k, v in item.items() if k in _ATTRIBUTES}
    if "items" in known:
        known["items"] = tuple(known["items"])
    return Fulfilment(**known, other={k: v for k, v in item.items() if k not in _ATTRIBUTES and k not in ("pk", "sk")})


def get_shipment(shipment_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_shipment_key(shipment_id))


def save_fulfilment(uow: UnitOfWork, fulfilment: Fulfilment, read_version: int) -> None:
    """Write the merged fulfilment, if nobody changed it since it was read (version 0: absent). An attribute
    is written once it is known (a fact not learnt is absent, as a flag that is not set)."""
    item = {name: getattr(fulfilment, attribute) for name, attribute in _ATTRIBUTES.items()
            if getattr(fulfilment, attribute) not in (None, False, "") or name in ("orderId", "status", "version")}
    if "items" in item:
        item["items"] = list(item["items"])
    uow.put_versioned({**fulfilment.other, **item, **_fulfilment_key(fulfilment.order_id)}, read_version)


def create_shipment(uow: UnitOfWork, shipment: dict[str, Any]) -> None:
    uow.put({**_shipment_key(shipment["shipmentId"]), **shipment, "status": "CREATED"},
            condition="attribute_not_exists(pk)")


def move_shipment(uow: UnitOfWork, shipment_id: str, expected: str, status: str, **fields: Any) -> None:
    sets, names, values = dynamo.assignments({"status": status, **fields})
    uow.update(_shipment_key(shipment_id), update=f"SET {sets}", condition="#status = :expected",
               names=names, values={**values, ":expected": expected})
