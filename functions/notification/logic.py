"""Customer notifications for customer-visible events; each attempt ends as NotificationSent or Failed."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from shopstream.consumer import InboundEvent
from shopstream.envelope import event_from_event
from shopstream.events import NotificationFailed, NotificationSent
from shopstream.observability import logger
from shopstream.outbox import ConditionFailed, UnitOfWork

from . import senders, store

SERVICE = "notification"
TEMPLATES = {
    "UserRegistered": ("welcome", "Welcome to shopstream"),
    "UserUpdated": ("profile-updated", "Your profile was updated"),
    "OrderConfirmed": ("order-confirmed", "Your order is confirmed"),
    "OrderCancelled": ("order-cancelled", "Your order was cancelled"),
    "OrderShipped": ("order-shipped", "Your order is on its way"),
    "PaymentFailed": ("payment-failed", "Your payment did not go through"),
    "PaymentRefunded": ("payment-refunded", "Your refund is on its way"),
    "ShippingDispatched": ("shipment-dispatched", "Your parcel was dispatched"),
    "ShippingDelivered": ("shipment-delivered", "Your parcel was delivered"),
    "CartAbandoned": ("cart-reminder", "You left something in your cart"),
}


def on_user_event(event: InboundEvent) -> None:
    data = event.data
    uow = UnitOfWork()
    store.put_contact(uow, data.user_id, data.email, data.name, data.version)
    try:
        uow.commit()
    except ConditionFailed:
        pass  # an older profile version
    notify(event)


def notify(event: InboundEvent) -> None:
    template, subject = TEMPLATES[event.event_type]
    user_id = event.data.user_id
    # Derived from the event id: a redelivered event maps to the same notification.
    notification_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event.envelope.event_id}/{template}"))
    contact = store.get_contact(user_id)
    body = f"{subject}. Reference: {getattr(event.data, 'order_id', None) or getattr(event.data, 'cart_id', '')}"
    error = None
    if contact is None or not contact.get("email"):
        error = "no email address on file"
    else:
        try:
            senders.sender().send(to=contact["email"], subject=subject, body=body)
        except Exception as exc:  # a refused address is an outcome to report, not a retry
            error = f"{type(exc).__name__}: {exc}"[:500]
    common = {"notification_id": notification_id, "user_id": user_id, "channel": "email", "template": template,
              "cause_event_type": event.event_type}
    uow = UnitOfWork()
    store.record(uow, {"notificationId": notification_id, "userId": user_id, "template": template,
                       "subject": subject, "body": body, "status": "FAILED" if error else "SENT", "error": error,
                       "sentAt": datetime.now(timezone.utc).isoformat(), "cause": event.envelope.event_id})
    if error:
        uow.emit(event_from_event(event.envelope, event_type="NotificationFailed", service=SERVICE,
                                  data=NotificationFailed(**common, error=error)))
        logger().warning("notification failed", extra={"userId": user_id, "error": error})
    else:
        uow.emit(event_from_event(event.envelope, event_type="NotificationSent", service=SERVICE,
                                  data=NotificationSent(**common)))
    try:
        uow.commit()
    except ConditionFailed:
        pass  # already recorded
