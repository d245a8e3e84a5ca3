"""Read models of another service's entities, built from its events in any order of arrival.

Each field keeps the value of the newest entity version that set it, so a late or replayed
event never overwrites a newer value, and an event that carries only some fields (an update)
never hides fields an older event carried (a registration that arrives after the update).
"""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.transaction import UnitOfWork, retry_on_conflict

VERSIONS = "fieldVersions"
REVISION = "rev"  # optimistic concurrency on the replica item itself


def merged(current: dict[str, Any] | None, key: dict[str, str], version: int,
           fields: dict[str, Any]) -> dict[str, Any] | None:
    """The replica after applying ``fields`` at ``version``; None if nothing changes."""
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


def apply(key: dict[str, str], version: int, fields: dict[str, Any]) -> bool:
    """Merge one event's fields into the replica stored under ``key``. True if it changed."""

    def attempt() -> bool:
        current = dynamo.get(key["pk"], key["sk"])
        after = merged(current, key, version, fields)
        if after is None:
            return False
        uow = UnitOfWork()
        if current is None:
            uow.put(after, condition="attribute_not_exists(pk)")
        elif REVISION not in current:
            uow.put(after, condition="attribute_not_exists(#rev)", names={"#rev": REVISION})
        else:
            uow.put(after, condition="#rev = :read", names={"#rev": REVISION}, values={":read": current[REVISION]})
        uow.commit()
        return True

    return bool(retry_on_conflict(attempt, what=f"replica {key['pk']}"))
