"""The user table: one item per user, ``USER#<id>`` / ``PROFILE``."""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork


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
