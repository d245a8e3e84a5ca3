"""Index keys written over shards, read back from all of them.

A GSI partition key takes about 1,000 writes a second, so a key that every item of a kind shares (the
order service's PENDING orders, the cart service's OPEN carts) caps the whole service there. Such items
are written under ``<KEY>#<n>`` with n = crc32(id) % SHARDS (stable across processes, unlike ``hash``),
and a query reads every shard and merges by sort key: the same items, in the same order, as one query
of the single key returned.
"""

from __future__ import annotations

import zlib
from typing import Any

from shopstream import dynamo

SHARDS = 16  # 16 x ~1,000 writes/s per index key: 2,000 orders/s with room (docs/capacity.md)


def shard_key(key: str, item_id: str, shards: int = SHARDS) -> str:
    return f"{key}#{zlib.crc32(item_id.encode()) % shards}"


def shard_keys(key: str, shards: int = SHARDS) -> list[str]:
    """Every shard, and the unsharded key itself: items written before sharding (2026-11-29) keep it."""
    return [key, *(f"{key}#{n}" for n in range(shards))]


def query(key: str, *, index: str, sort_below: str | None = None, limit: int | None = None,
          partition_attribute: str = "gsi1pk", sort_attribute: str = "gsi1sk",
          shards: int = SHARDS) -> list[dict[str, Any]]:
    """Items of every shard of ``key`` (sort key below ``sort_below`` if given), in sort-key order,
    at most ``limit`` of them: the lowest sort keys over all shards."""
    condition = f"{partition_attribute} = :key"
    values: dict[str, Any] = {}
    if sort_below is not None:
        condition += f" AND {sort_attribute} < :below"
        values[":below"] = sort_below
    items: list[dict[str, Any]] = []
    for shard in shard_keys(key, shards):
        items += dynamo.query(condition, {":key": shard, **values}, index=index, limit=limit)
    items.sort(key=lambda item: item[sort_attribute])
    return items[:limit] if limit else items
