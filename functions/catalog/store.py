"""The catalog table: ``PRODUCT#<id>/PRODUCT`` (listed through gsi1) and ``SKU#<sku>/SKU`` (uniqueness)."""

from __future__ import annotations

from typing import Any

from shopstream import dynamo, pages
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork, update_item

LISTING = "PRODUCTS"


def _key(product_id: str) -> Key:
    return {"pk": f"PRODUCT#{product_id}", "sk": "PRODUCT"}


def get(product_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_key(product_id))


def list_page(limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Products by name, ``limit`` at a time; the cursor to the next page, if any."""
    start = pages.start_key(cursor, {"gsi1pk": LISTING}, ("gsi1sk", "pk", "sk"))
    items, last = dynamo.query_page("gsi1pk = :listing", {":listing": LISTING}, index="gsi1", limit=limit,
                                    start=start)
    return items, pages.cursor_after(last, partition="gsi1pk")


def create(uow: UnitOfWork, product: dict[str, Any]) -> None:
    uow.put({"pk": f"SKU#{product['sku']}", "sk": "SKU", "productId": product["productId"]},
            condition="attribute_not_exists(pk)")
    uow.put({**_key(product["productId"]), **product, "gsi1pk": LISTING,
             "gsi1sk": f"{product['name'].lower()}#{product['productId']}",
             "shardAvailable": {}, "shardVersion": {}},
            condition="attribute_not_exists(pk)")


def update(uow: UnitOfWork, product_id: str, changes: dict[str, Any], expected_version: int) -> None:
    sets, names, values = dynamo.assignments({**changes, "version": expected_version + 1})
    uow.update(_key(product_id), update=f"SET {sets}", condition="#version = :expected",
               names=names, values={**values, ":expected": expected_version})


def apply_availability(product_id: str, shard: int, available: int, version: int) -> bool:
    """One stock counter's level; only a newer version of that counter wins (stale and duplicate events
    change nothing: False, as for a product this catalog does not hold). One conditional UpdateItem, not a
    transaction: nothing else changes with it and its condition alone decides (docs/decisions.md, 2026-12-05)."""
    written, _ = update_item(
        _key(product_id), update="SET shardAvailable.#shard = :available, shardVersion.#shard = :version",
        condition="attribute_exists(pk) AND (attribute_not_exists(shardVersion.#shard) "
                  "OR shardVersion.#shard < :version)",
        names={"#shard": str(shard)}, values={":available": available, ":version": version})
    return written


def available(product: dict[str, Any]) -> int:
    """Units available: the sum of the newest level of each of the product's stock counters."""
    return sum(int(units) for units in product.get("shardAvailable", {}).values())
