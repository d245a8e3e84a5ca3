"""Delivery channels: SES on AWS; locally the message is only stored (the table is the inbox)."""

from __future__ import annotations

from typing import Protocol

from shopstream import aws
from shopstream.config import get_settings

from .settings import settings as service_settings


class Sender(Protocol):
    def send(self, *, message_id: str, to: str, subject: str, body: str) -> None: ...


class StoredOnly:
    def send(self, *, message_id: str, to: str, subject: str, body: str) -> None:
        return None


class Ses:
    def send(self, *, message_id: str, to: str, subject: str, body: str) -> None:
        aws.client("sesv2").send_email(
            FromEmailAddress=service_settings().notification_sender,
            Destination={"ToAddresses": [to]},
            Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}}},
            EmailTags=[{"Name": "notificationId", "Value": message_id}],
        )


def error_class(error: Exception) -> str:
    """What went wrong, without the provider's message (it can quote the address)."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code") if hasattr(error, "response") else None
    return f"rejected:{code or type(error).__name__}"[:100]


_installed: Sender | None = None


def install(sender: Sender | None) -> None:
    """Use this channel instead of the configured one (tests and the simulation count sends)."""
    global _installed
    _installed = sender


def sender() -> Sender:
    if _installed is not None:
        return _installed
    return Ses() if get_settings().notification_channel == "ses" else StoredOnly()
