"""Dead-letter messages for records that can never succeed.

A poison record is sent with its raw bytes so nothing is lost: it can be inspected,
fixed and fed back (``redrive``) to the same handler.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, Protocol

from shopstream import aws
from shopstream.wire import IncomingRecord

POISON_KIND = "poison"


class DeadLetterSink(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...


class SqsDeadLetterSink:
    def __init__(self, queue_url: str):
        if not queue_url:
            raise ValueError("no dead-letter queue configured (SHOPSTREAM_DLQ_URL)")
        self.queue_url = queue_url

    def send(self, message: dict[str, Any]) -> None:
        aws.client("sqs").send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(message, separators=(",", ":")),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": message["kind"]},
                "reason": {"DataType": "String", "StringValue": message["reason"]},
                "handler": {"DataType": "String", "StringValue": message["handler"]},
            },
        )


def poison_message(record: IncomingRecord, *, handler: str, reason: str, detail: str) -> dict[str, Any]:
    def b64(value: bytes | None) -> str | None:
        return base64.b64encode(value).decode() if value is not None else None

    return {
        "kind": POISON_KIND,
        "handler": handler,
        "reason": reason,
        "detail": detail[:2000],
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": b64(record.key),
        "value": b64(record.value),
        "headers": {name: b64(value) for name, value in record.headers.items()},
        "deadLetteredAt": datetime.now(UTC).isoformat(),
    }
