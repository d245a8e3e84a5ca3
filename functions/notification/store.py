"""The notification table: ``CONTACT#<userId>/CONTACT`` (addresses, newest version wins) and
``NOTIFICATION#<id>/MESSAGE`` (what was sent; the local channel's outbox to the customer)."""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.outbox import UnitOfWork


def get_contact(user_id: str) -> dict[str, Any] | None:
    return dynamo.get(f"CONTACT#{user_id}", "CONTACT")


def put_contact(uow: UnitOfWork, user_id: str, email: str | None, name: str | None, version: int) -> None:
    fields = {k: v for k, v in (("email", email), ("name", name)) if v is not None}
    sets, names, values = dynamo.assignments({**fields, "version": version})
    uow.update({"pk": f"CONTACT#{user_id}", "sk": "CONTACT"}, update=f"SET {sets}",
               condition="attribute_not_exists(pk) OR #version < :version", names=names, values=values)


def record(uow: UnitOfWork, notification: dict[str, Any]) -> None:
    uow.put({"pk": f"NOTIFICATION#{notification['notificationId']}", "sk": "MESSAGE", **notification,
             "gsi1pk": f"USER#{notification['userId']}", "gsi1sk": notification["sentAt"]},
            condition="attribute_not_exists(pk)")


def sent_to(user_id: str) -> list[dict[str, Any]]:
    return dynamo.query("gsi1pk = :user", {":user": f"USER#{user_id}"}, index="gsi1")
