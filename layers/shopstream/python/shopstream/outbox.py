"""Transactional outbox: state changes and the events they cause commit together.

A handler adds its events to the same DynamoDB transaction as its state change (``UnitOfWork.emit``,
transaction.py); the relay, triggered by the table's stream, publishes them. Either both happen or neither does.
Where direct publish is on, the critical path's committers also publish their events right after the commit and
delete their outbox items; the relay (shopstream.relay) is then their fallback (shopstream.direct). This module
is the outbox's items: how an event is kept, read back and published again.

Order: a stream orders changes per item, and each event is its own item, so the relay may
publish one aggregate's events out of order (parallel shards, a retried partial failure).
Consumers therefore never depend on arrival order (docs/decisions.md, 2026-11-29).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shopstream import tracing
from shopstream.config import get_settings
from shopstream.envelope import EventEnvelope
from shopstream.publisher import Publisher, get_publisher
from shopstream.wire import OutgoingRecord, outgoing, to_record

# shopstream.dynamo (with shopstream.aws: 1 ms on the relay's init from byte code, 3 ms compiled from source as on
# Lambda) is imported where outbox items are read back (the operator's replay): the relay loads this module at init
# and never reads the table.

OUTBOX_PREFIX = "OUTBOX#"
# Outbox items are spread over this many partition keys per hour, so writes never pile onto one
# DynamoDB partition and a time window can be read back with a few queries (relay redrive).
OUTBOX_SHARDS = 16


def outbox_partition(at: datetime, shard: int) -> str:
    return f"{OUTBOX_PREFIX}{at.astimezone(UTC):%Y%m%d%H}#{shard:02d}"


def outbox_item(envelope: EventEnvelope) -> dict[str, Any]:
    """The outbox item of an event: ``OUTBOX#<hour>#<shard>`` / ``<timestamp>#<eventId>``.

    Kept (TTL, ``outbox_ttl_seconds``) longer than its stream record (24 h), which the relay retries and direct
    publish's read-back looks up; a batch the relay gave up is kept whole in S3, whence a redrive reads it.
    """
    record = to_record(envelope)  # validates topic and key now, not in the relay
    shard = zlib.crc32(envelope.event_id.encode()) % OUTBOX_SHARDS
    item = {
        "pk": outbox_partition(envelope.timestamp, shard),
        "sk": f"{envelope.timestamp.astimezone(UTC).isoformat(timespec='milliseconds')}#{envelope.event_id}",
        "eventId": envelope.event_id,
        "eventType": envelope.event_type,
        "eventVersion": envelope.event_version,
        "correlationId": envelope.correlation_id,
        "topic": record.topic,
        "key": record.key,
        "payload": record.value.decode("utf-8"),
        "ttl": int(time.time()) + get_settings().outbox_ttl_seconds,
    }
    # The context the event was caused in (the API request's span, a handler's process span): the relay
    # publishes the event as its child (shopstream.tracing).
    context = tracing.current_traceparent()
    if context is not None:
        item[tracing.TRACEPARENT] = context
    return item


def outbox_items_between(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every outbox item of this service's table written in [start, end] (oldest first)."""
    from shopstream import dynamo

    items: list[dict[str, Any]] = []
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    low = start.astimezone(UTC).isoformat(timespec="milliseconds")
    high = end.astimezone(UTC).isoformat(timespec="milliseconds") + "~"
    while hour <= end:
        for shard in range(OUTBOX_SHARDS):
            items += dynamo.query("pk = :pk AND sk BETWEEN :low AND :high",
                                  {":pk": outbox_partition(hour, shard), ":low": low, ":high": high})
        hour += timedelta(hours=1)
    return sorted(items, key=lambda item: item["sk"])


REDRIVE_MARGIN = timedelta(minutes=15)  # stream arrival vs the event's own timestamp, generously


def failure_window(message: dict[str, Any]) -> tuple[datetime, datetime]:
    """The time range of outbox items a stream mapping's on-failure record (``DDBStreamBatchInfo``) covers."""
    info = message["DDBStreamBatchInfo"]

    def moment(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    return (moment(info["approximateArrivalOfFirstRecord"]) - REDRIVE_MARGIN,
            moment(info["approximateArrivalOfLastRecord"]) + REDRIVE_MARGIN)


def record_of_item(item: dict[str, Any]) -> OutgoingRecord:
    """The Kafka record of an outbox item read from the table (with the context it was committed in, as
    its ``traceparent`` header, for ``republish`` to link to)."""
    record = outgoing(topic=item["topic"], key=item["key"], value_json=item["payload"],
                      event_type=item["eventType"], event_version=item["eventVersion"],
                      correlation_id=item["correlationId"], event_id=item["eventId"])
    if item.get(tracing.TRACEPARENT):
        record = replace(record, headers=tracing.headers_with(record.headers, traceparent=item[tracing.TRACEPARENT]))
    return record


def republish(records: list[OutgoingRecord], publisher: Publisher | None = None) -> int:
    """Publish outbox events again (consumers drop what they already applied, by eventId). Each is published
    in a new trace, linked to the context it was first committed in (shopstream.tracing)."""
    publisher = publisher or get_publisher()
    published = []
    for record in records:
        original = dict(record.headers).get(tracing.TRACEPARENT)
        span = tracing.start(f"publish {record.topic}", kind="producer", parent=None,
                             links=(original.decode() if original else None,),
                             attributes={**publish_attributes(record), "shopstream.redelivery": "redrive"})
        context = tracing.traceparent(span) or (original.decode() if original else None)
        marks = {"traceparent": context} if context else {}
        publisher.publish(replace(record, headers=tracing.headers_with(record.headers, shopstream_redelivery="redrive",
                                                                       **marks)))
        published.append(span)
    try:
        publisher.flush()
    finally:
        for span in published:
            tracing.end(span)
        tracing.flush()
    return len(records)


def publish_attributes(record: OutgoingRecord) -> dict[str, Any]:
    return tracing.messaging_attributes(topic=record.topic, operation="publish", key=record.key,
                                        event_id=record.event_id)


def outbox_record(image: dict[str, Any]) -> OutgoingRecord | None:
    """The Kafka record of an outbox item (a stream NewImage in DynamoDB JSON), else None.

    Reads the string attributes directly: deserializing whole items costs more than publishing.
    """
    if not image.get("pk", {}).get("S", "").startswith(OUTBOX_PREFIX):
        return None
    return outgoing(
        topic=image["topic"]["S"],
        key=image["key"]["S"],
        value_json=image["payload"]["S"],
        event_type=image["eventType"]["S"],
        event_version=image["eventVersion"]["S"],
        correlation_id=image["correlationId"]["S"],
        event_id=image["eventId"]["S"],
    )


def stored_record(image: dict[str, Any]) -> OutgoingRecord | None:
    """``outbox_record`` with the context the event was committed in as its ``traceparent`` header (a relay
    batch read back for a redrive: ``republish`` links to it)."""
    record = outbox_record(image)
    context = image.get(tracing.TRACEPARENT, {}).get("S")
    if record is None or not context:
        return record
    return replace(record, headers=tracing.headers_with(record.headers, traceparent=context))
