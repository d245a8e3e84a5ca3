"""The cart table.

CART#<id> / CART            the cart; open carts are indexed (gsi1 OPEN#<shard> by last activity)
USER#<userId> / CART#<id>   the customer's carts (written with the cart), so that erasure finds them all
USER#<userId> / ERASED      the customer was erased: their carts were deleted and no cart is created for them
"""

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


def open_carts_of(user_id: str) -> list[dict[str, Any]]:
    """The customer's open carts: their index entries (one query, written with each cart), then the
    carts themselves in one batch read."""
    found = dynamo.get_many([(_key(cart_id)["pk"], "CART") for cart_id in carts_of(user_id)])
    return sorted((cart for cart in found.values() if cart.get("status") == "OPEN"), key=lambda c: c["cartId"])


def open_carts(idle_before: str | None = None) -> list[dict[str, Any]]:
    return shards.query(OPEN_INDEX, index="gsi1", sort_below=idle_before)


def _owner_key(user_id: str, cart_id: str) -> Key:
    return {"pk": f"USER#{user_id}", "sk": f"CART#{cart_id}"}


def _erased_key(user_id: str) -> Key:
    return {"pk": f"USER#{user_id}", "sk": "ERASED"}


def create(uow: UnitOfWork, cart: dict[str, Any]) -> None:
    """The cart and its owner's index entry, unless the owner was erased (a condition of the same transaction)."""
    uow.check(_erased_key(cart["userId"]), condition="attribute_not_exists(pk)")
    uow.put({**_key(cart["cartId"]), **cart, "gsi1pk": shards.shard_key(OPEN_INDEX, cart["cartId"]),
             "gsi1sk": cart["updatedAt"]},
            condition="attribute_not_exists(pk)")
    uow.put({**_owner_key(cart["userId"], cart["cartId"]), "cartId": cart["cartId"]},
            condition="attribute_not_exists(pk)")


def erased(user_id: str) -> bool:
    return dynamo.get(**_erased_key(user_id)) is not None


def mark_erased(uow: UnitOfWork, user_id: str, at: str) -> None:
    uow.put({**_erased_key(user_id), "erasedAt": at}, condition="attribute_not_exists(pk)")


def carts_of(user_id: str) -> list[str]:
    """Ids of every cart the customer has, whatever its status (a consistent read of the table)."""
    items = dynamo.query("pk = :pk AND begins_with(sk, :carts)", {":pk": f"USER#{user_id}", ":carts": "CART#"})
    return [i["cartId"] for i in items]


def delete(uow: UnitOfWork, cart_id: str, user_id: str) -> None:
    uow.delete(_key(cart_id))
    uow.delete(_owner_key(user_id, cart_id))


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
