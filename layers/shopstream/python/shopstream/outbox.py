"""Transactional outbox: state changes and the events they cause commit together.

A handler adds its events to the same DynamoDB transaction as its state change (``UnitOfWork.emit``,
transaction.py); the relay, triggered by the table's stream, publishes them. Either both happen or neither does.
Where direct publish is on, the critical path's committers also publish their events right after the commit and
delete their outbox items; the relay is then their fallback (shopstream.direct).

Order: a stream orders changes per item, and each event is its own item, so the relay may
publish one aggregate's events out of order (parallel shards, a retried partial failure).
Consumers therefore never depend on arrival order (docs/decisions.md, 2026-11-29).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shopstream import tracing
from shopstream.config import get_settings
from shopstream.envelope import EventEnvelope
from shopstream.observability import flush_metrics, logger, metrics
from shopstream.publisher import Publisher, PublishError, get_publisher
from shopstream.wire import OutgoingRecord, outgoing, to_record

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

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
        record = replace(record, headers=tracing.headers_with(record.headers, shopstream_redelivery="redrive", **marks))
        publisher.publish(record)
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


class OutboxRelay:
    """DynamoDB stream -> Kafka. Lambda entry point; reports per-record failures.

    Where direct publish is on (``Settings.direct_publish``), an item its function stamped ``direct`` is published
    only if that function did not (shopstream.direct.plan: its delete is in the batch, or a read-back no longer finds
    it). One still within its grace is waited for, or with ``hold_back`` (the in-process bus) left with what follows
    for a later poll: reported as the first failed record and named under ``heldBack`` (not a failure:
    local/relay.py counts no attempt for it)."""

    def __init__(self, publisher: Publisher | None = None, *, hold_back: bool = False):
        self._publisher = publisher
        self._hold_back = hold_back

    def __call__(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        from aws_lambda_powertools.metrics import MetricUnit
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

        publisher = self._publisher or get_publisher()
        sequence_by_event: dict[str, str] = {}
        traced = tracing.enabled()
        spans: dict[str, Any] = {}  # eventId -> its publish span, ended once the broker answered
        skipped: set[str] = set()  # sequence numbers of items their function published (direct)
        held: str | None = None  # the sequence number from which this batch is left for a later poll
        if get_settings().direct_publish:
            from shopstream import direct

            skipped, held = direct.plan(event["Records"], hold_back=self._hold_back)
        holding = False

        def publish(record: Any) -> None:
            nonlocal holding
            raw = record.raw_event
            holding = holding or raw["dynamodb"].get("SequenceNumber") == held
            if raw.get("eventName") != "INSERT" or holding or raw["dynamodb"]["SequenceNumber"] in skipped:
                return
            image = raw["dynamodb"].get("NewImage") or {}
            out = outbox_record(image)
            if out is None:
                return
            if traced:  # a PRODUCER span, child of the context the event was committed in
                span = tracing.start(f"publish {out.topic}", kind="producer",
                                     parent=image.get(tracing.TRACEPARENT, {}).get("S"),
                                     attributes=publish_attributes(out))
                out = replace(out, headers=tracing.headers_with(out.headers, traceparent=tracing.traceparent(span)
                                                                or ""))
                spans[out.event_id] = span
            publisher.publish(out)  # asynchronous; acknowledged by flush below
            sequence_by_event[out.event_id] = raw["dynamodb"]["SequenceNumber"]

        processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
        with processor(records=event["Records"], handler=publish, lambda_context=context):
            processor.process()
        response: dict[str, Any] = dict(processor.response())
        try:
            publisher.flush()
            published = len(sequence_by_event)
        except PublishError as exc:
            undelivered = set(sequence_by_event) if "<undelivered>" in exc.failed else set(exc.failed)
            failures = [{"itemIdentifier": sequence_by_event[e]} for e in undelivered if e in sequence_by_event]
            response = {"batchItemFailures": [*response["batchItemFailures"], *failures]}
            published = len(sequence_by_event) - len(failures)
            logger().error("outbox records not delivered; will be retried", extra={"failed": exc.failed})
            for event_id in undelivered:
                tracing.end(spans.pop(event_id, None), error=str(exc.failed.get(event_id, "not delivered")))
        for span in spans.values():
            tracing.end(span)
        tracing.flush()
        metrics().add_metric(name="OutboxPublished", unit=MetricUnit.Count, value=published)
        if skipped:
            metrics().add_metric(name="OutboxPublishedByTheirFunction", unit=MetricUnit.Count, value=len(skipped))
        if held is not None:
            response = {"batchItemFailures": [*response["batchItemFailures"], {"itemIdentifier": held}],
                        "heldBack": held}
        flush_metrics()
        return response


relay_handler = OutboxRelay()
