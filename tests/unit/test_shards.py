"""Sharded index keys (orders PENDING, carts OPEN): writes spread over every shard, and the sweeps that
read them find every item, in the order one unsharded query returned them (docs/capacity.md)."""

from __future__ import annotations

import importlib
import zlib
from dataclasses import replace

import pytest

from shopstream import dynamo, shards
from shopstream.transaction import UnitOfWork


def ids_covering_every_shard(prefix: str, per_shard: int = 2) -> list[str]:
    """Ids whose shards are each of 0..SHARDS-1 at least ``per_shard`` times."""
    found: dict[int, list[str]] = {n: [] for n in range(shards.SHARDS)}
    n = 0
    while any(len(ids) < per_shard for ids in found.values()):
        item_id = f"{prefix}-{n}"
        bucket = found[zlib.crc32(item_id.encode()) % shards.SHARDS]
        if len(bucket) < per_shard:
            bucket.append(item_id)
        n += 1
    return [item_id for ids in found.values() for item_id in ids]


def index_keys(table_items: list[dict]) -> set[str]:
    return {item["gsi1pk"] for item in table_items if "gsi1pk" in item}


def test_shard_keys_are_stable_and_cover_every_shard():
    assert shards.shard_key("PENDING", "o-1") == f"PENDING#{zlib.crc32(b'o-1') % 16}"
    assert shards.shard_keys("OPEN") == ["OPEN", *(f"OPEN#{n}" for n in range(16))]


@pytest.fixture
def order_store(service_env):
    service_env("order")
    return importlib.import_module("order.store")


@pytest.fixture
def cart_store(service_env):
    service_env("cart")
    return importlib.import_module("cart.store")


def _place(store, order_id: str, deadline: str) -> None:
    from order.aggregate import Order

    before = Order(order_id=order_id)
    after = replace(before, version=1, status="PENDING", user_id="u-1", deadline=deadline, created_at=deadline)
    uow = UnitOfWork()
    store.append(uow, before, [], after)
    uow.commit()


def test_pending_orders_spread_over_every_shard_and_the_sweep_finds_them_all_oldest_first(order_store):
    ids = ids_covering_every_shard("o")
    deadlines = {order_id: f"2026-11-29T10:{i // 60:02d}:{i % 60:02d}.000+00:00" for i, order_id in enumerate(ids)}
    for order_id in reversed(ids):
        _place(order_store, order_id, deadlines[order_id])
    written = dynamo.query("pk = :pk", {":pk": f"PENDING#{ids[0]}"})
    assert written[0]["gsi1pk"] == shards.shard_key("PENDING", ids[0])
    scanned = [item for order_id in ids for item in dynamo.query("pk = :pk", {":pk": f"PENDING#{order_id}"})]
    assert index_keys(scanned) == {f"PENDING#{n}" for n in range(shards.SHARDS)}

    oldest_first = sorted(ids, key=deadlines.__getitem__)
    assert order_store.overdue("2026-11-29T11:00:00.000+00:00", limit=1000) == oldest_first
    # the limit keeps the oldest over all shards, as the single query did
    assert order_store.overdue("2026-11-29T11:00:00.000+00:00", limit=5) == oldest_first[:5]
    # only what is past its deadline
    cutoff = deadlines[oldest_first[10]]
    assert order_store.overdue(cutoff, limit=1000) == oldest_first[:10]


def test_an_order_leaving_pending_leaves_the_sharded_index(order_store):
    from order.aggregate import Order

    _place(order_store, "o-gone", "2026-11-29T10:00:00.000+00:00")
    assert order_store.overdue("2026-11-29T11:00:00.000+00:00") == ["o-gone"]
    before = replace(Order(order_id="o-gone"), version=1, status="PENDING", user_id="u-1")
    uow = UnitOfWork()
    order_store.append(uow, before, [], replace(before, version=2, status="CONFIRMED"))
    uow.commit()
    assert order_store.overdue("2026-11-29T11:00:00.000+00:00") == []


def test_a_pending_order_written_before_sharding_is_still_swept(order_store):
    uow = UnitOfWork()
    uow.put({"pk": "PENDING#o-old", "sk": "PENDING", "gsi1pk": "PENDING", "gsi1sk": "2026-11-29T09:00:00.000+00:00",
             "orderId": "o-old"})
    uow.commit()
    _place(order_store, "o-new", "2026-11-29T10:00:00.000+00:00")
    assert order_store.overdue("2026-11-29T11:00:00.000+00:00") == ["o-old", "o-new"]


def _cart(cart_id: str, updated_at: str) -> dict:
    return {"cartId": cart_id, "userId": "u-1", "items": [], "status": "OPEN", "version": 1,
            "createdAt": updated_at, "updatedAt": updated_at}


def test_open_carts_spread_over_every_shard_and_every_reader_finds_them_all(cart_store):
    ids = ids_covering_every_shard("c")
    times = {cart_id: f"2026-11-28T10:{i // 60:02d}:{i % 60:02d}.000+00:00" for i, cart_id in enumerate(ids)}
    for cart_id in ids:
        uow = UnitOfWork()
        cart_store.create(uow, _cart(cart_id, times[cart_id]))
        uow.commit()
    stored = [cart_store.get(cart_id) for cart_id in ids]
    assert index_keys(stored) == {f"OPEN#{n}" for n in range(shards.SHARDS)}

    by_activity = sorted(ids, key=times.__getitem__)
    assert [c["cartId"] for c in cart_store.open_carts()] == by_activity
    idle_before = times[by_activity[7]]
    assert [c["cartId"] for c in cart_store.open_carts(idle_before=idle_before)] == by_activity[:7]

    # activity moves a cart within its shard; closing takes it out of the index
    first = cart_store.get(by_activity[0])
    uow = UnitOfWork()
    cart_store.replace_items(uow, first, [], "2026-11-29T00:00:00.000+00:00")
    uow.commit()
    assert [c["cartId"] for c in cart_store.open_carts()][-1] == by_activity[0]
    second = cart_store.get(by_activity[1])
    uow = UnitOfWork()
    cart_store.close(uow, second, "CHECKED_OUT", "2026-11-29T00:00:01.000+00:00")
    uow.commit()
    assert by_activity[1] not in {c["cartId"] for c in cart_store.open_carts()}
