"""Customer notifications for customer-visible events.

Each message has a deterministic id (cause eventId + template) and is recorded as SENDING before
it is handed to the channel, then as SENT (NotificationSent) or FAILED (NotificationFailed). A
retry, a redelivery or a replay finds the record and sends nothing: a message whose attempt was
interrupted after it was handed over is closed as UNCONFIRMED, never sent twice (the channel, SES,
has no idempotency key of its own). Cart reminders are marketing: never sent to a deactivated
customer (SUPPRESSED). Events carry an error class, never the provider's text (it can quote the
address).

Personal data: the contact keeps the customer's address sealed for them (shopstream.personal) and
not their name (no message uses it); a message is sent to the address opened at that moment, and
stores no address and no name (its body names only the order or cart). An erased customer's contact
is a tombstone: nothing is kept of them and nothing is sent to them (SUPPRESSED), whatever arrives
after the erasure.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

from shopstream import personal, replica, tracing
from shopstream.envelope import event_from_event
from shopstream.events import (
    NotificationFailed,
    NotificationSent,
    UserDeactivated,
    UserErased,
    UserRegistered,
    UserRegisteredV1,
    UserRegisteredV2,
    UserUpdatedV1,
    UserUpdatedV2,
)
from shopstream.inbound import InboundEvent, PoisonRecord
from shopstream.observability import logger
from shopstream.transaction import ConditionFailed, UnitOfWork, retry_on_conflict, try_commit

from . import notices, senders, store
from .settings import settings as service_settings

SERVICE = "notification"
ADMINS = "admins"  # the userId of messages to the administrators (NotificationSent/Failed are keyed by it)
FINAL = frozenset({"SENT", "FAILED", "UNCONFIRMED", "SUPPRESSED"})


def on_user_event(event: InboundEvent) -> None:
    match event.data:
        case UserRegisteredV1() | UserRegisteredV2() | UserUpdatedV1() | UserUpdatedV2() as data:
            status = "ACTIVE" if isinstance(data, UserRegistered) else None
            notice = notices.required(notices.user_notice(data), data)
            retry_on_conflict(partial(_merge_and_notify, event, notice, data.email, status),
                              what=f"contact {data.user_id}")
        case UserDeactivated() as data:
            store.apply_contact(data.user_id, data.version, {"status": "DEACTIVATED"})
        case UserErased(user_id=user_id):
            store.erase_contact(user_id, at=event.envelope.timestamp.isoformat())
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def _merge_and_notify(event: InboundEvent, notice: notices.Notice, email: Any, status: str | None) -> None:
    """The contact after this event, and its notice, from one read of the contact and the key: the
    contact's write goes in the notice's first transaction."""
    user_id, version = event.data.user_id, event.data.version
    contact, key = store.contact_and_key(user_id)
    after = store.merged_contact(contact, user_id, version,
                                 {"email": personal.keep(email, user_id, "email", key), "status": status})
    uow = UnitOfWork()
    if after is not None:
        store.write_contact(uow, contact, after)
    _notify(event, notice, after or contact, key, uow)


def notification_id_for(cause_event_id: str, template: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{cause_event_id}/{template}"))


def notify(event: InboundEvent) -> None:
    """The event's notice to its customer, from one read of their contact and their key."""
    notice = notices.required(notices.customer_notice(event.topic, event.data), event.data)

    def attempt() -> None:
        contact, key = store.contact_and_key(event.data.user_id)
        _notify(event, notice, contact, key, UnitOfWork())

    retry_on_conflict(attempt, what=f"notifying {event.data.user_id}")


def _notify(event: InboundEvent, notice: notices.Notice, contact: dict[str, Any] | None, key: personal.CustomerKey,
            uow: UnitOfWork) -> None:
    """Record the notice with ``uow`` (and whatever it already holds), then send it if it is to be sent.
    ConditionFailed if something read changed meanwhile (the contact, or the key: erased)."""
    user_id = event.data.user_id
    notification_id = notification_id_for(event.envelope.event_id, notice.template)
    message = _message(event, notification_id, user_id, notice.template, notice.subject,
                       f"{notice.subject}. Reference: {notice.reference}")
    contact = contact or {}
    if notice.marketing and contact.get("status") == "DEACTIVATED":
        _record(event, uow, {**message, "status": "SUPPRESSED"})
        return
    try:
        if replica.erased(contact):
            raise personal.Unreadable(user_id)
        address = personal.reveal(contact.get("email"), "email", key)
    except personal.Unreadable:  # erased: nothing is sent to them any more
        _record(event, uow, {**message, "status": "SUPPRESSED", "error": "erased"})
        return
    if not address:
        _record(event, uow, {**message, "status": "FAILED", "error": "no_address"},
                outcome=_outcome(event, message, "no_address"))
        return
    if personal.is_sealed(contact.get("email")):
        personal.still_current(uow, key)  # erased between the read and the record: nothing is sent
    if _record(event, uow, {**message, "status": "SENDING"}):
        _deliver(event, message, address)


def notify_admins(event: InboundEvent) -> None:
    """An analytics alert, to the shop's administrators (one address, from the service's settings)."""
    notice = notices.alert_notice(event.data)
    notification_id = notification_id_for(event.envelope.event_id, notice.template)
    message = _message(event, notification_id, ADMINS, notice.template, notice.subject,
                       f"{notice.subject}: {notice.reference} (alert {event.data.alert_id})")
    # The write-once record is the guard: the first attempt to write it is the one that sends.
    if _record(event, UnitOfWork(), {**message, "status": "SENDING"}):
        _deliver(event, message, service_settings().notification_admin_email)


def _resume(event: InboundEvent, notification_id: str) -> None:
    """The message was recorded by an earlier attempt (a retry, a redelivery, a replay): nothing is
    sent again. An attempt interrupted after the hand-over is closed as UNCONFIRMED."""
    existing = store.get_notification(notification_id)
    if existing is not None and existing["status"] == "SENDING":
        _finish(event, existing, "UNCONFIRMED", error="delivery_unconfirmed")


def _message(event: InboundEvent, notification_id: str, user_id: str, template: str, subject: str,
             body: str) -> dict[str, Any]:
    return {"notificationId": notification_id, "userId": user_id, "template": template, "subject": subject,
            "body": body, "cause": event.envelope.event_id, "causeEventType": event.event_type,
            "sentAt": datetime.now(UTC).isoformat()}


def _record(event: InboundEvent, uow: UnitOfWork, message: dict[str, Any], outcome: Any = None) -> bool:
    """Commit ``uow`` with the message's write-once record (and its outcome event). False if an earlier
    attempt recorded it (a retry, a redelivery, a replay: resumed instead); ConditionFailed if another
    condition of ``uow`` failed. The record alone (no contact change, no key check, no event) is one
    conditional write, not a transaction: its condition alone decides."""
    if not uow.actions and outcome is None:
        if store.record_alone(message):
            return True
        _resume(event, message["notificationId"])
        return False
    record_index = len(uow.actions)
    store.record(uow, message)
    if outcome is not None:
        uow.emit(outcome)
    try:
        uow.commit()
    except ConditionFailed as failed:
        if record_index not in failed.failed_indexes():
            raise
        _resume(event, message["notificationId"])
        return False
    return True


def _deliver(event: InboundEvent, message: dict[str, Any], to: str) -> None:
    """Hand the recorded (SENDING) message to the channel, then record what became of it."""
    try:
        with tracing.span("send notification", kind="client", attributes={
                "rpc.system.name": "email", "rpc.method": "send",
                "shopstream.notification_id": message["notificationId"]}):
            senders.sender().send(message_id=message["notificationId"], to=to, subject=message["subject"],
                                  body=message["body"])
    except Exception as exc:  # a refused message is an outcome to report, not a retry
        _finish(event, {**message, "status": "SENDING"}, "FAILED", error=senders.error_class(exc))
        return
    _finish(event, {**message, "status": "SENDING"}, "SENT")


def _finish(event: InboundEvent, message: dict[str, Any], status: str, error: str | None = None) -> None:
    uow = store.finish(UnitOfWork(), message["notificationId"], status, error)
    uow.emit(_outcome(event, message, error))
    try_commit(uow)  # someone else finished it: theirs stands
    if error:
        logger().warning("notification not delivered", extra={"notificationId": message["notificationId"],
                                                              "error": error})


def _outcome(event: InboundEvent, message: dict[str, Any], error: str | None) -> Any:
    common = {"notification_id": message["notificationId"], "user_id": message["userId"], "channel": "email",
              "template": message["template"], "cause_event_type": message["causeEventType"]}
    if error:
        return event_from_event(event.envelope, event_type="NotificationFailed", service=SERVICE,
                                data=NotificationFailed(**common, error=error))
    return event_from_event(event.envelope, event_type="NotificationSent", service=SERVICE,
                            data=NotificationSent(**common))
