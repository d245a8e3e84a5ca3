"""The user table: one item per user, ``USER#<id>`` / ``PROFILE``.

``email`` and ``name`` are stored sealed for the customer (shopstream.personal), so neither this
table, its stream nor its backups hold them in clear. An erased profile keeps only its id, status
ERASED, version and dates: a tombstone that refuses a second registration under the same id.
"""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork

ERASED = "ERASED"


def _key(user_id: str) -> Key:
    return {"pk": f"USER#{user_id}", "sk": "PROFILE"}


def get(user_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_key(user_id))


def create(uow: UnitOfWork, profile: dict[str, Any]) -> None:
    uow.put({**_key(profile["userId"]), **profile}, condition="attribute_not_exists(pk)")


def update(uow: UnitOfWork, user_id: str, changes: dict[str, Any], expected_version: int) -> None:
    sets, names, values = dynamo.assignments({**changes, "version": expected_version + 1})
    uow.update(_key(user_id), update=f"SET {sets}", condition="#version = :expected",
               names=names, values={**values, ":expected": expected_version})


def create_tombstone(uow: UnitOfWork, user_id: str, at: str) -> None:
    """The tombstone of a customer who never registered a profile (signed up, then asked to be erased): on
    condition that no profile exists, so that of a registration and this erasure racing, one fails."""
    uow.put({**_key(user_id), "userId": user_id, "status": ERASED, "version": 1, "createdAt": at, "erasedAt": at},
            condition="attribute_not_exists(pk)")


def erase(uow: UnitOfWork, user_id: str, expected_version: int, at: str) -> None:
    """The profile becomes a tombstone: the personal fields go, the id, status and dates stay."""
    uow.update(_key(user_id), update="SET #status = :erased, #version = :next, erasedAt = :at REMOVE email, #name",
               condition="#version = :expected AND #status <> :erased",
               names={"#status": "status", "#version": "version", "#name": "name"},
               values={":erased": ERASED, ":next": expected_version + 1, ":at": at, ":expected": expected_version})
