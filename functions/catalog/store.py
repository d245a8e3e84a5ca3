"""The catalog table: ``PRODUCT#<id>/PRODUCT`` (listed through gsi1) and ``SKU#<sku>/SKU`` (uniqueness)."""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork

LISTING = "PRODUCTS"


def _key(product_id: str) -> Key:
    return {"pk": f"PRODUCT#{product_id}", "sk": "PRODUCT"}


def get(product_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_key(product_id))


def list_all() -> list[dict[str, Any]]:
    return dynamo.query("gsi1pk = :listing", {":listing": LISTING}, index="gsi1")


def create(uow: UnitOfWork, product: dict[str, Any]) -> None:
    uow.put({"pk": f"SKU#{product['sku']}", "sk": "SKU", "productId": product["productId"]},
            condition="attribute_not_exists(pk)")
    uow.put({**_key(product["productId"]), **product, "gsi1pk": LISTING,
             "gsi1sk": f"{product['name'].lower()}#{product['productId']}",
             "availableQty": 0, "availabilityVersion": 0},
            condition="attribute_not_exists(pk)")


def update(uow: UnitOfWork, product_id: str, changes: dict[str, Any], expected_version: int) -> None:
    sets, names, values = dynamo.assignments({**changes, "version": expected_version + 1})
    uow.update(_key(product_id), update=f"SET {sets}", condition="#version = :expected",
               names=names, values={**values, ":expected": expected_version})


def apply_availability(uow: UnitOfWork, product_id: str, available: int, version: int) -> None:
    """Only a newer stock version wins: stale and duplicate events change nothing."""
    uow.update(_key(product_id), update="SET availableQty = :available, availabilityVersion = :version",
               condition="attribute_exists(pk) AND availabilityVersion < :version",
               values={":available": available, ":version": version})
