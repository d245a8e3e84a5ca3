"""The user table: one item per user, ``USER#<id>`` / ``PROFILE``."""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.outbox import UnitOfWork


def _key(user_id: str) -> dict[str, str]:
    return {"pk": f"USER#{user_id}", "sk": "PROFILE"}


def get(user_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_key(user_id))


def create(uow: UnitOfWork, profile: dict[str, Any]) -> None:
    uow.put({**_key(profile["userId"]), **profile}, condition="attribute_not_exists(pk)")


def update(uow: UnitOfWork, user_id: str, changes: dict[str, Any], expected_version: int) -> None:
    names = {f"#{k}": k for k in changes} | {"#version": "version"}
    values = {f":{k}": v for k, v in changes.items()} | {":expected": expected_version, ":next": expected_version + 1}
    sets = ", ".join(f"#{k} = :{k}" for k in changes)
    uow.update(_key(user_id), update=f"SET {sets + ', ' if sets else ''}#version = :next",
               condition="#version = :expected", names=names, values=values)
