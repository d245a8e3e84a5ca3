"""Delivery channels: SES on AWS; locally the message is only stored (the table is the inbox)."""

from __future__ import annotations

from typing import Protocol

from shopstream import aws
from shopstream.config import get_settings


class Sender(Protocol):
    def send(self, *, to: str, subject: str, body: str) -> None: ...


class StoredOnly:
    def send(self, *, to: str, subject: str, body: str) -> None:
        return None


class Ses:
    def send(self, *, to: str, subject: str, body: str) -> None:
        aws.client("sesv2").send_email(
            FromEmailAddress=get_settings().notification_sender,
            Destination={"ToAddresses": [to]},
            Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}}},
        )


def sender() -> Sender:
    return Ses() if get_settings().notification_channel == "ses" else StoredOnly()
