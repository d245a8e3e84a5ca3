"""The notification table.

CONTACT#<userId> / CONTACT            the customer's address (sealed for them) and status (a replica: newest
                                      version wins field by field); an erased customer's is a tombstone
NOTIFICATION#<id> / MESSAGE           each message, recorded before it is sent (the local channel's inbox); in no
                                      index: nothing reads a customer's messages, and an index entry cost two
                                      writes per notice (recorded, finished; docs/decisions.md, 2026-12-05)
"""

from __future__ import annotations

from typing import Any

from shopstream import dynamo, personal, replica
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork, put_once


def _contact_key(user_id: str) -> dict[str, str]:
    return {"pk": f"CONTACT#{user_id}", "sk": "CONTACT", "userId": user_id}


def get_contact(user_id: str) -> dict[str, Any] | None:
    return dynamo.get(f"CONTACT#{user_id}", "CONTACT")


def contact_and_key(user_id: str) -> tuple[dict[str, Any] | None, personal.CustomerKey]:
    """The customer's contact and their key (to open its address), in one consistent read."""
    key_table, key = personal.key_location(user_id)
    contact = {k: v for k, v in _contact_key(user_id).items() if k != "userId"}
    found = dynamo.batch_read({dynamo.table_name(): [contact], key_table: [key]})
    return next(iter(found[dynamo.table_name()]), None), personal.customer_key(user_id, found)


def merged_contact(contact: dict[str, Any] | None, user_id: str, version: int,
                   fields: dict[str, Any]) -> dict[str, Any] | None:
    """The contact after an event's fields (newest version wins, field by field); None if nothing changes."""
    return replica.merged(contact, _contact_key(user_id), version, fields)


def write_contact(uow: UnitOfWork, read: dict[str, Any] | None, after: dict[str, Any]) -> None:
    """``after`` with ``uow``, if the contact is still as ``read`` (else the transaction fails)."""
    replica.write_merged(uow, read, after)


def apply_contact(user_id: str, version: int, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The contact after merging ``fields`` (an UpdateItem that returns it: no read)."""
    return replica.apply(_contact_key(user_id), version, fields)


def erase_contact(user_id: str, at: str) -> bool:
    return replica.erase(_contact_key(user_id), at)


def _message_key(notification_id: str) -> Key:
    return {"pk": f"NOTIFICATION#{notification_id}", "sk": "MESSAGE"}


def get_notification(notification_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_message_key(notification_id))


def _message_item(notification: dict[str, Any]) -> dict[str, Any]:
    return {**_message_key(notification["notificationId"]), **notification}


def record(uow: UnitOfWork, notification: dict[str, Any]) -> UnitOfWork:
    """The message, once (its id is derived from its cause), with whatever else ``uow`` holds."""
    uow.put(_message_item(notification), condition="attribute_not_exists(pk)")
    return uow


def record_alone(notification: dict[str, Any]) -> bool:
    """The message, once, when nothing else changes with it: one conditional PutItem, no transaction. False if
    it was recorded before."""
    return put_once(_message_item(notification))


def finish(uow: UnitOfWork, notification_id: str, status: str, error: str | None) -> UnitOfWork:
    sets, names, values = dynamo.assignments({"status": status, **({"error": error} if error else {})})
    uow.update(_message_key(notification_id), update=f"SET {sets}", condition="#status = :sending",
               names=names, values={**values, ":sending": "SENDING"})
    return uow
