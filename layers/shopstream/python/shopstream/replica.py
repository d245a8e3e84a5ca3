"""Read models of another service's entities, built from its events in any order of arrival.

Each field keeps the value of the newest entity version that set it (``<field>Version`` beside
it), so a late or replayed event never overwrites a newer value, and an event that carries only
some fields (an update) never hides fields an older event carried (a registration that arrives
after the update).

Events usually arrive in order, so the write is tried first as if this event were newer than
everything the replica holds (or the replica did not exist yet): one UpdateItem, no read. When
that is not so, the failed condition hands back the stored item, the merge is decided from it and
written under the item's revision (optimistic concurrency), again without a read.

An erased entity's replica is a tombstone: none of its fields is kept, and nothing merges into it
again, so a registration or an update that arrives after the erasure stores nothing.
"""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.transaction import Contention, UnitOfWork, retry_on_conflict, update_item

REVISION = "rev"  # optimistic concurrency on the replica item itself
ERASED = "erased"  # a tombstone: the entity was erased; its replica keeps no field
ATTEMPTS = 25


def erased(item: dict[str, Any] | None) -> bool:
    return bool(item and item.get(ERASED))


def version_attribute(field: str) -> str:
    return f"{field}Version"


def merged(current: dict[str, Any] | None, key: dict[str, str], version: int,
           fields: dict[str, Any]) -> dict[str, Any] | None:
    """The replica after applying ``fields`` at ``version``; None if nothing changes (or it was erased)."""
    if erased(current):
        return None
    item = dict(current or key)
    changed = False
    for name, value in fields.items():
        if value is None or int(item.get(version_attribute(name), 0)) >= version:
            continue
        item[name], item[version_attribute(name)] = value, version
        changed = True
    if not changed:
        return None
    item["version"] = max(int(item.get("version", 0)), version)
    item[REVISION] = int(item.get(REVISION, 0)) + 1
    return item


def apply(key: dict[str, str], version: int, fields: dict[str, Any]) -> dict[str, Any] | None:
    """Merge one event's fields into the replica stored under ``key``; the replica afterwards
    (None only if it does not exist and this event carried nothing; a tombstone if it was erased)."""
    fields = {name: value for name, value in fields.items() if value is not None}
    if not fields:
        return dynamo.get(key["pk"], key["sk"])
    primary = {"pk": key["pk"], "sk": key["sk"]}
    sets = {**{k: v for k, v in key.items() if k not in primary}, **fields,
            **{version_attribute(name): version for name in fields}, "version": version}
    assignments, names, values = _set_all(sets, primary)
    written, stored = update_item(
        primary, update=f"SET {assignments}, #rev = if_not_exists(#rev, :zero) + :one",
        condition="(attribute_not_exists(pk) OR #version < :version) AND attribute_not_exists(#erased)",
        names={**names, "#rev": REVISION, "#version": "version", "#erased": ERASED},
        values={**values, ":zero": 0, ":one": 1, ":version": version})
    if written:
        return stored
    for _ in range(ATTEMPTS):  # the stored replica is as new as this event, or newer: merge field by field
        after = merged(stored, key, version, fields)
        if after is None:  # nothing newer, or a tombstone
            return stored
        assignments, names, values = _set_all(after, primary)
        if stored is None:
            condition = "attribute_not_exists(pk)"
        else:  # unchanged since it was handed back
            condition = "#rev = :read"
            names, values = {**names, "#rev": REVISION}, {**values, ":read": stored.get(REVISION, 0)}
        written, stored = update_item(primary, update=f"SET {assignments}", condition=condition, names=names,
                                      values=values)
        if written:
            return stored
    raise Contention(f"replica {key['pk']}: still conflicting after {ATTEMPTS} attempts")


def _replace(current: dict[str, Any] | None, after: dict[str, Any]) -> None:
    uow = UnitOfWork()
    write_merged(uow, current, after)
    uow.commit()


def write_merged(uow: UnitOfWork, current: dict[str, Any] | None, after: dict[str, Any]) -> None:
    """Write ``after`` (``merged`` from ``current``) with ``uow``, if the replica is still what was read
    (optimistic concurrency on ``rev``; else the transaction fails: read and merge again)."""
    if current is None:
        uow.put(after, condition="attribute_not_exists(pk)")
    elif REVISION not in current:
        uow.put(after, condition="attribute_not_exists(#rev)", names={"#rev": REVISION})
    else:
        uow.put(after, condition="#rev = :read", names={"#rev": REVISION}, values={":read": current[REVISION]})


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


def _set_all(item: dict[str, Any], primary: dict[str, str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    attributes = {k: v for k, v in item.items() if k not in primary}
    names = {f"#s{i}": name for i, name in enumerate(attributes)}
    values = {f":s{i}": value for i, value in enumerate(attributes.values())}
    return ", ".join(f"#s{i} = :s{i}" for i in range(len(attributes))), names, values
