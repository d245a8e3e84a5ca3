"""Read models of another service's entities, built from its events in any order of arrival.

Each field keeps the value of the newest entity version that set it, so a late or replayed
event never overwrites a newer value, and an event that carries only some fields (an update)
never hides fields an older event carried (a registration that arrives after the update).

An erased entity's replica is a tombstone: none of its fields is kept, and nothing merges into it
again, so a registration or an update that arrives after the erasure stores nothing.
"""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.transaction import UnitOfWork, retry_on_conflict

VERSIONS = "fieldVersions"
REVISION = "rev"  # optimistic concurrency on the replica item itself
ERASED = "erased"  # a tombstone: the entity was erased; its replica keeps no field


def erased(item: dict[str, Any] | None) -> bool:
    return bool(item and item.get(ERASED))


def merged(current: dict[str, Any] | None, key: dict[str, str], version: int,
           fields: dict[str, Any]) -> dict[str, Any] | None:
    """The replica after applying ``fields`` at ``version``; None if nothing changes (or it was erased)."""
    if erased(current):
        return None
    item = dict(current or key)
    versions = dict(item.get(VERSIONS) or {})
    changed = False
    for name, value in fields.items():
        if value is None or versions.get(name, 0) >= version:
            continue
        item[name], versions[name] = value, version
        changed = True
    if not changed:
        return None
    item[VERSIONS] = versions
    item["version"] = max(versions.values())
    item[REVISION] = int(item.get(REVISION, 0)) + 1
    return item


def _replace(current: dict[str, Any] | None, after: dict[str, Any]) -> None:
    """Write ``after`` if the replica is still what was read (optimistic concurrency on ``rev``)."""
    uow = UnitOfWork()
    if current is None:
        uow.put(after, condition="attribute_not_exists(pk)")
    elif REVISION not in current:
        uow.put(after, condition="attribute_not_exists(#rev)", names={"#rev": REVISION})
    else:
        uow.put(after, condition="#rev = :read", names={"#rev": REVISION}, values={":read": current[REVISION]})
    uow.commit()


def apply(key: dict[str, str], version: int, fields: dict[str, Any]) -> bool:
    """Merge one event's fields into the replica stored under ``key``. True if it changed."""

    def attempt() -> bool:
        current = dynamo.get(key["pk"], key["sk"])
        after = merged(current, key, version, fields)
        if after is None:
            return False
        _replace(current, after)
        return True

    return bool(retry_on_conflict(attempt, what=f"replica {key['pk']}"))


def erase(key: dict[str, str], at: str) -> bool:
    """Replace the replica under ``key`` by a tombstone (also when none exists yet: an erasure that
    overtakes the registration). True if this call erased it."""

    def attempt() -> bool:
        current = dynamo.get(key["pk"], key["sk"])
        if erased(current):
            return False
        _replace(current, {**key, ERASED: True, "erasedAt": at, REVISION: int((current or {}).get(REVISION, 0)) + 1})
        return True

    return bool(retry_on_conflict(attempt, what=f"replica {key['pk']}"))
