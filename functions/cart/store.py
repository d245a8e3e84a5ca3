"""The cart table.

CART#<id> / CART            the cart; open carts are indexed (gsi1 OPEN#<shard> by last activity)
USER#<userId> / CARTS       the ids of every cart the customer created and how many (written with each cart),
                            and when they were erased (then their carts were deleted and no cart is created
                            for them): a cart's creation and the erasure both write it, so one of them fails
                            if they race, and one read of it (serializable, unlike a query) finds every cart
PRODUCT#<productId> / CART#<id>
                            the open carts holding the product (written with each open cart's lines, deleted
                            when it closes), so that a discontinued product finds its carts in one query
"""

from __future__ import annotations

from typing import Any

from shopstream import dynamo, shards
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork

OPEN_INDEX = "OPEN"
# Distinct products in one cart: every product a cart holds is an index item written in the cart's own
# transaction, and replacing every line of a full cart (its old entries deleted, the new ones put, the
# cart and its event) must fit DynamoDB's 100 actions: 2 x 40 + 2.
MAX_PRODUCTS = 40


def _key(cart_id: str) -> Key:
    return {"pk": f"CART#{cart_id}", "sk": "CART"}


def get(cart_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_key(cart_id))


def open_carts_of(user_id: str) -> list[dict[str, Any]]:
    """The customer's open carts: their ids (one read of the customer's state, written with each cart),
    then the carts themselves in one batch read."""
    found = get_many(carts_of(user_id))
    return sorted((cart for cart in found.values() if cart.get("status") == "OPEN"), key=lambda c: c["cartId"])


def open_carts_with(product_id: str) -> list[dict[str, Any]]:
    """The open carts holding the product: its index entries (one query), then the carts in one batch read."""
    entries = dynamo.query("pk = :pk AND begins_with(sk, :carts)", {":pk": f"PRODUCT#{product_id}", ":carts": "CART#"})
    found = get_many([entry["cartId"] for entry in entries])
    return sorted((cart for cart in found.values() if cart.get("status") == "OPEN"
                   and any(line["productId"] == product_id for line in cart["items"])), key=lambda c: c["cartId"])


def open_carts(idle_before: str | None = None) -> list[dict[str, Any]]:
    return shards.query(OPEN_INDEX, index="gsi1", sort_below=idle_before)


def _owner_state_key(user_id: str) -> Key:
    return {"pk": f"USER#{user_id}", "sk": "CARTS"}


def _product_key(product_id: str, cart_id: str) -> Key:
    return {"pk": f"PRODUCT#{product_id}", "sk": f"CART#{cart_id}"}


def _products(items: list[dict[str, Any]]) -> set[str]:
    return {line["productId"] for line in items}


def _index_products(uow: UnitOfWork, cart_id: str, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    """The product index entries of a cart whose lines go from ``before`` to ``after`` (only what changes)."""
    old, new = _products(before), _products(after)
    for product_id in sorted(old - new):
        uow.delete(_product_key(product_id, cart_id))
    for product_id in sorted(new - old):
        uow.put({**_product_key(product_id, cart_id), "cartId": cart_id})


def create(uow: UnitOfWork, cart: dict[str, Any]) -> None:
    """The cart, counted in its owner's state, unless the owner was erased (a condition of the same transaction)."""
    uow.update(_owner_state_key(cart["userId"]), update="ADD created :one, cartIds :cart",
               condition="attribute_not_exists(erasedAt)", values={":one": 1, ":cart": {cart["cartId"]}})
    uow.put({**_key(cart["cartId"]), **cart, "gsi1pk": shards.shard_key(OPEN_INDEX, cart["cartId"]),
             "gsi1sk": cart["updatedAt"]},
            condition="attribute_not_exists(pk)")
    _index_products(uow, cart["cartId"], [], cart["items"])


def erased(user_id: str) -> bool:
    state = dynamo.get(**_owner_state_key(user_id))
    return bool(state and state.get("erasedAt"))


def carts_of(user_id: str) -> list[str]:
    """Ids of every cart the customer created, whatever its status (an erased customer's deleted ones too)."""
    return owner(user_id)[1]


def owner(user_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The customer's cart state (None: they never had a cart) and the ids of every cart they have: one
    consistent GetItem, which a transaction never shows half-done (a cart's creation writes both)."""
    state = dynamo.get(**_owner_state_key(user_id))
    return state, sorted((state or {}).get("cartIds", []))


def mark_erased(uow: UnitOfWork, user_id: str, state: dict[str, Any] | None, at: str) -> None:
    """Mark the customer erased with ``uow``, if no cart was created since ``state`` was read (else the
    transaction fails: a cart the caller does not know of exists)."""
    if state is None:
        uow.put({**_owner_state_key(user_id), "created": 0, "erasedAt": at}, condition="attribute_not_exists(pk)")
    else:
        uow.update(_owner_state_key(user_id), update="SET erasedAt = :at",
                   condition="created = :read AND attribute_not_exists(erasedAt)",
                   values={":at": at, ":read": state["created"]})


def get_many(cart_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The carts that exist among ``cart_ids`` (one batch read), by id."""
    found = dynamo.get_many([(_key(cart_id)["pk"], "CART") for cart_id in cart_ids])
    return {cart["cartId"]: cart for cart in found.values()}


def delete(uow: UnitOfWork, cart: dict[str, Any]) -> None:
    """The cart as it was read (else ConditionFailed) and the index entries of its lines (none once it
    closed). Its id stays in its owner's state: an erasure interrupted half-way finds the rest there."""
    uow.delete(_key(cart["cartId"]), condition="version = :read", values={":read": cart["version"]})
    if cart["status"] == "OPEN":
        _index_products(uow, cart["cartId"], cart["items"], [])


def replace_items(uow: UnitOfWork, cart: dict[str, Any], items: list[dict[str, Any]], at: str) -> None:
    uow.update(_key(cart["cartId"]), update="SET #items = :items, version = :next, updatedAt = :at, gsi1sk = :at",
               condition="version = :read AND #status = :open", names={"#items": "items", "#status": "status"},
               values={":items": items, ":next": cart["version"] + 1, ":read": cart["version"], ":at": at,
                       ":open": "OPEN"})
    _index_products(uow, cart["cartId"], cart["items"], items)


def close(uow: UnitOfWork, cart: dict[str, Any], status: str, at: str) -> None:
    """Leave OPEN (checked out or abandoned): drop it from the open index."""
    uow.update(_key(cart["cartId"]), update="SET #status = :status, version = :next, updatedAt = :at "
                                            "REMOVE gsi1pk, gsi1sk",
               condition="version = :read AND #status = :open", names={"#status": "status"},
               values={":status": status, ":next": cart["version"] + 1, ":read": cart["version"], ":at": at,
                       ":open": "OPEN"})
    _index_products(uow, cart["cartId"], cart["items"], [])
