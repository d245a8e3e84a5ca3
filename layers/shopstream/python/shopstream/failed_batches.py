"""What a mapping keeps of a batch it gave up on, and how the records are read back from it.

Lambda's event source mappings (the MSK mappings of the handlers, the DynamoDB stream mappings of the
outbox relays) send an invocation record to their on-failure destination once a batch's retries are
spent. An SQS or SNS destination receives metadata only (topic, partition, offsets; or stream sequence
numbers), and the records themselves are gone once the topic's retention or the stream's 24 hours
pass. An S3 destination also receives the whole invocation event (``payload``), so every mapping here
gives up into its service's failed-batch bucket; an S3 event notification of the new object reaches the
handler's (or relay's) dead-letter queue, where operators and alarms already look, and
``tools/ops.py dlq redrive`` feeds the records of the object back (docs/decisions.md, 2026-12-04).

Object keys follow Lambda's documented convention,
``aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>``, so each mapping's
objects share a prefix and the bucket's notifications route them by it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

OBJECT_PREFIX = "aws/lambda/"
# Every dead-letter queue keeps a message this long (SQS's maximum) ...
DEAD_LETTER_RETENTION = timedelta(days=14)
# ... and whatever a message points at outlives it: an S3 notification's object is expired a day after the
# queue let the notification go (tests/infra/test_templates.py checks every such pair).
FAILED_BATCH_RETENTION = DEAD_LETTER_RETENTION + timedelta(days=1)


def mapping_prefix(mapping_id: str) -> str:
    """Where one mapping's invocation records are written (an S3 notification filter routes by it)."""
    return f"{OBJECT_PREFIX}{mapping_id}/"


def object_key(mapping_id: str, shard: str, at: datetime) -> str:
    at = at.astimezone(UTC)
    return f"{mapping_prefix(mapping_id)}{shard}/{at:%Y/%m/%d}/{at:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"


# --- the dead-letter messages that stand for a stored batch ------------------------------------------------
def is_test_event(body: dict[str, Any]) -> bool:
    """The message S3 sends to a queue when a notification is configured: not a dead letter."""
    return body.get("Event") == "s3:TestEvent"


def stored_objects(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) of each object an S3 event notification announces (keys arrive URL-encoded)."""
    return [(r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]))
            for r in body.get("Records", []) if r.get("eventSource") == "aws:s3"
            and str(r.get("eventName", "")).startswith("ObjectCreated")]


# --- the invocation record -----------------------------------------------------------------------------------
def payload(record: dict[str, Any]) -> dict[str, Any] | None:
    """The invocation event an S3 destination keeps with the metadata (a JSON document, or its text)."""
    value = record.get("payload")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def named_count(record: dict[str, Any]) -> int:
    """How many records the invocation record says the batch held."""
    info = record.get("KafkaBatchInfo") or record.get("DDBStreamBatchInfo") or {}
    return int(info.get("batchSize") or 0)


def kafka_records(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The MSK records of the failed batch (``KafkaBatchInfo``: one partition, an offset range), from the
    payload, in offset order; [] when the record has no payload."""
    event, info = payload(record), record.get("KafkaBatchInfo") or {}
    if event is None:
        return []
    found = [r for records in (event.get("records") or {}).values() for r in records
             if r.get("topic") == info.get("topic") and r.get("partition") == info.get("partition")
             and info.get("firstOffset", 0) <= r.get("offset", -1) <= info.get("lastOffset", -1)]
    return sorted({r["offset"]: r for r in found}.values(), key=lambda r: r["offset"])


def stream_records(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The DynamoDB stream records of the failed batch, from the payload; [] when it has none."""
    event = payload(record)
    return list(event.get("Records") or []) if event is not None else []


def invocation_record(*, function: str, condition: str, error: str, attempts: int, batch_info: dict[str, Any],
                      event: dict[str, Any]) -> dict[str, Any]:
    """The document Lambda writes to an S3 on-failure destination (the local runtime writes the same)."""
    key = "KafkaBatchInfo" if "topic" in batch_info else "DDBStreamBatchInfo"
    return {
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function, "condition": condition,
                           "approximateInvokeCount": attempts},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": error},
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        key: batch_info,
        "payload": json.dumps(event, default=str),
    }
