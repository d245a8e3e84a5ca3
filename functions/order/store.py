"""The order table.

ORDER#<id> / EVENT#<seq>   the aggregate's events (append-only; event sourcing)
ORDER#<id> / STATE         projection for reads (gsi1: USER#<userId> by creation time)
PENDING#<id> / PENDING     present while PENDING (gsi1: PENDING#<shard> by deadline) for the timeout sweeper
REPLICA#USER#<id>, REPLICA#PRODUCT#<id> / REPLICA   read models of other services (newest version wins);
                                                     an erased user's is a tombstone
The shipping address (in the Placed event and the projection) and the user's name are stored sealed for
the customer (shopstream.personal): unreadable once the customer is erased.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from shopstream import dynamo, pages, replica, shards
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork

from .aggregate import Change, Order, fold

PENDING_INDEX = "PENDING"


def _state_key(order_id: str) -> Key:
    return {"pk": f"ORDER#{order_id}", "sk": "STATE"}


def _pending_key(order_id: str) -> Key:
    return {"pk": f"PENDING#{order_id}", "sk": "PENDING"}


def get_state(order_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_state_key(order_id))


def _order(item: dict[str, Any]) -> Order:
    fields = {k: v for k, v in item.items() if k in Order.__dataclass_fields__}
    fields["items"] = tuple(fields.get("items", ()))
    return Order(**fields)


def load(order_id: str) -> Order:
    """Current state from the projection (a snapshot of the fold at its version)."""
    item = get_state(order_id)
    return _order(item) if item is not None else Order(order_id=order_id)


def rebuild(order_id: str) -> Order:
    """State from the stored events alone."""
    events = dynamo.query("pk = :pk AND begins_with(sk, :events)", {":pk": f"ORDER#{order_id}", ":events": "EVENT#"})
    return fold(order_id, [(Change(e["kind"], e.get("data", {})), e["at"]) for e in events])


def append(uow: UnitOfWork, before: Order, changes: list[tuple[Change, str]], after: Order) -> None:
    """Append events and move the projection, conditioned on the version read (optimistic concurrency)."""
    for offset, (change, at) in enumerate(changes, start=1):
        uow.put({"pk": f"ORDER#{before.order_id}", "sk": f"EVENT#{before.version + offset:08d}",
                 "kind": change.kind, "data": change.data, "at": at}, condition="attribute_not_exists(pk)")
    state = {**_state_key(after.order_id), **asdict(after), "gsi1pk": f"USER#{after.user_id}",
             "gsi1sk": f"{after.created_at}#{after.order_id}"}
    if before.version == 0:
        uow.put(state, condition="attribute_not_exists(pk)")
    else:
        uow.put(state, condition="version = :expected", values={":expected": before.version})
    if after.status == "PENDING" and before.status != "PENDING":
        uow.put({**_pending_key(after.order_id), "gsi1pk": shards.shard_key(PENDING_INDEX, after.order_id),
                 "gsi1sk": after.deadline,
                 "orderId": after.order_id})
    elif before.status == "PENDING" and after.status != "PENDING":
        uow.delete(_pending_key(after.order_id))


def overdue(now_iso: str, limit: int = 100) -> list[str]:
    items = shards.query(PENDING_INDEX, index="gsi1", sort_below=now_iso, limit=limit)
    return [i["orderId"] for i in items]


def orders_of(user_id: str, limit: int, cursor: str | None) -> tuple[list[Order], str | None]:
    """Newest first, ``limit`` at a time, and the cursor to the next page, if any; the index projects the
    whole STATE item, so no further reads."""
    partition = {"gsi1pk": f"USER#{user_id}"}
    items, last = dynamo.query_page("gsi1pk = :user", {":user": partition["gsi1pk"]}, index="gsi1", forward=False,
                                    limit=limit, start=pages.start_key(cursor, partition, ("gsi1sk", "pk", "sk")))
    return [_order(i) for i in items], pages.cursor_after(last, partition="gsi1pk")


# --- replicas --------------------------------------------------------------------------
def get_replica(kind: str, entity_id: str) -> dict[str, Any] | None:
    return dynamo.get(f"REPLICA#{kind}#{entity_id}", "REPLICA")


def get_product_replicas(product_ids: list[str]) -> dict[str, dict[str, Any]]:
    found = dynamo.get_many([(f"REPLICA#PRODUCT#{p}", "REPLICA") for p in product_ids])
    return {item["id"]: item for item in found.values()}


def apply_replica(kind: str, entity_id: str, version: int, fields: dict[str, Any]) -> None:
    """Merge an event's fields into the replica, field by field, newest version wins."""
    replica.apply({"pk": f"REPLICA#{kind}#{entity_id}", "sk": "REPLICA", "id": entity_id}, version, fields)


def erase_replica(kind: str, entity_id: str, at: str) -> bool:
    """The entity was erased: its replica becomes a tombstone (nothing of it is kept, nothing merges again)."""
    return replica.erase({"pk": f"REPLICA#{kind}#{entity_id}", "sk": "REPLICA", "id": entity_id}, at)
