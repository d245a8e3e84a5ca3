"""The events of notification-events (version v1)."""

from __future__ import annotations

from typing import Literal

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import Id, Label, Text, example

notification_event = TopicEvents("notification-events", key="userId")


@notification_event
class NotificationSent(WireModel):
    model_config = example({"notificationId": "n-1", "userId": "u-1", "channel": "email",
                            "template": "order-confirmed", "causeEventType": "OrderConfirmed"})

    notification_id: Id
    user_id: Id
    channel: Literal["email", "sms", "push"]
    template: Label
    cause_event_type: Label


@notification_event
class NotificationFailed(WireModel):
    """``error`` is a classification (e.g. ``no_address``, ``rejected``), never the provider's text."""

    model_config = example({"notificationId": "n-1", "userId": "u-1", "channel": "email",
                            "template": "order-confirmed", "causeEventType": "OrderConfirmed", "error": "bounced"})

    notification_id: Id
    user_id: Id
    channel: Literal["email", "sms", "push"]
    template: Label
    cause_event_type: Label
    error: Text
