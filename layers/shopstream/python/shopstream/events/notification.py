"""The events of notification-events (version v1)."""

from __future__ import annotations

from typing import Literal

from shopstream.envelope import WireModel
from shopstream.events.common import Id, Label, Text


class NotificationSent(WireModel):
    notification_id: Id
    user_id: Id
    channel: Literal["email", "sms", "push"]
    template: Label
    cause_event_type: Label


class NotificationFailed(WireModel):
    """``error`` is a classification (e.g. ``no_address``, ``rejected``), never the provider's text."""

    notification_id: Id
    user_id: Id
    channel: Literal["email", "sms", "push"]
    template: Label
    cause_event_type: Label
    error: Text
