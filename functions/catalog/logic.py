"""Products, and their availability as a read model of inventory's stock levels."""

from __future__ import annotations

from typing import Any

from shopstream.events import (
    InventoryAdjusted,
    InventoryReleased,
    InventoryReserved,
    ProductCreated,
    ProductDiscontinued,
    ProductUpdated,
)
from shopstream.inbound import InboundEvent, PoisonRecord
from shopstream.request import Caller, Conflict, NotFound, commit
from shopstream.transaction import UnitOfWork

from . import store
from .models import Availability, CreateProduct, Product, ProductList, UpdateProduct

SERVICE = "catalog"


def _product(item: dict[str, Any]) -> Product:
    available = store.available(item)
    return Product.model_validate({**item, "availability": Availability(available=available, in_stock=available > 0
                                                                        and item["status"] == "ACTIVE")})


def create(caller: Caller, body: CreateProduct) -> Product:
    product_id = caller.derived_id("p_", 16)
    if caller.repeat_of_bound_request and (made := store.get(product_id)) is not None:
        return _product(made)  # this very request created it (its Idempotency-Key's binding)
    item = {"productId": product_id, "sku": body.sku, "name": body.name,
            "price": body.price.to_wire(), "status": "ACTIVE", "version": 1}
    uow = UnitOfWork()
    store.create(uow, item)
    uow.emit(caller.command("ProductCreated", ProductCreated(product_id=product_id, sku=body.sku, name=body.name,
                                                             price=body.price, version=1), SERVICE))
    try:
        commit(uow, status=201, conflict=f"sku {body.sku} already exists")
    except Conflict:
        if not caller.repeat_of_bound_request:
            raise
        return get(product_id)  # the same request, sent twice at once, committed first
    return _product(item)


def get(product_id: str) -> Product:
    item = store.get(product_id)
    if item is None:
        raise NotFound("product not found")
    return _product(item)


def list_products(limit: int, cursor: str | None) -> ProductList:
    items, next_cursor = store.list_page(limit, cursor)
    return ProductList(products=[_product(i) for i in items], next_cursor=next_cursor)


def update(caller: Caller, product_id: str, body: UpdateProduct) -> Product:
    current = get(product_id)
    if current.status != "ACTIVE":
        raise Conflict("product is discontinued")
    changes = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    uow = UnitOfWork()
    store.update(uow, product_id, changes, current.version)
    uow.emit(caller.command("ProductUpdated", ProductUpdated(product_id=product_id, name=body.name, price=body.price,
                                                             version=current.version + 1), SERVICE))
    commit(uow, status=200, conflict="the product changed meanwhile; retry")
    return get(product_id)


def discontinue(caller: Caller, product_id: str) -> Product:
    current = get(product_id)
    if current.status != "ACTIVE":
        raise Conflict("product is already discontinued")
    uow = UnitOfWork()
    store.update(uow, product_id, {"status": "DISCONTINUED"}, current.version)
    uow.emit(caller.command("ProductDiscontinued",
                            ProductDiscontinued(product_id=product_id, version=current.version + 1), SERVICE))
    commit(uow, status=200, conflict="the product changed meanwhile; retry")
    return get(product_id)


def on_stock_event(event: InboundEvent) -> None:
    """Availability follows inventory, counter by counter; each level carries its counter's version, so
    order of arrival does not matter."""
    match event.data:
        case InventoryAdjusted(level=level):
            levels = [level]
        case InventoryReserved(levels=levels) | InventoryReleased(levels=levels):
            pass
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    for level in levels:  # False: an unknown product or an older version, nothing to apply
        store.apply_availability(level.product_id, level.shard, level.available, level.version)
