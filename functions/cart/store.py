"""The cart table: ``CART#<id>/CART``; open carts are indexed (gsi1 OPEN#<shard> by last activity)."""

from __future__ import annotations

from typing import Any

from shopstream import dynamo, shards
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork

OPEN_INDEX = "OPEN"


def _key(cart_id: str) -> Key:
    return {"pk": f"CART#{cart_id}", "sk": "CART"}


def get(cart_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_key(cart_id))


def open_carts(idle_before: str | None = None) -> list[dict[str, Any]]:
    return shards.query(OPEN_INDEX, index="gsi1", sort_below=idle_before)


def create(uow: UnitOfWork, cart: dict[str, Any]) -> None:
    uow.put({**_key(cart["cartId"]), **cart, "gsi1pk": shards.shard_key(OPEN_INDEX, cart["cartId"]),
             "gsi1sk": cart["updatedAt"]},
            condition="attribute_not_exists(pk)")


def replace_items(uow: UnitOfWork, cart: dict[str, Any], items: list[dict[str, Any]], at: str) -> None:
    uow.update(_key(cart["cartId"]), update="SET #items = :items, version = :next, updatedAt = :at, gsi1sk = :at",
               condition="version = :read AND #status = :open", names={"#items": "items", "#status": "status"},
               values={":items": items, ":next": cart["version"] + 1, ":read": cart["version"], ":at": at,
                       ":open": "OPEN"})


def close(uow: UnitOfWork, cart: dict[str, Any], status: str, at: str) -> None:
    """Leave OPEN (checked out or abandoned): drop it from the open index."""
    uow.update(_key(cart["cartId"]), update="SET #status = :status, version = :next, updatedAt = :at "
                                            "REMOVE gsi1pk, gsi1sk",
               condition="version = :read AND #status = :open", names={"#status": "status"},
               values={":status": status, ":next": cart["version"] + 1, ":read": cart["version"], ":at": at,
                       ":open": "OPEN"})
