"""Transactional outbox: state changes and the events they cause commit together.

A handler never writes to Kafka. It adds its events to the same DynamoDB transaction as
its state change (``UnitOfWork.emit``); the relay, triggered by the table's stream,
publishes them. Either both happen or neither does.
"""

from __future__ import annotations

import time
from typing import Any

from shopstream import aws
from shopstream.config import get_settings
from shopstream.dynamo import to_attributes
from shopstream.envelope import EventEnvelope
from shopstream.observability import flush_metrics, logger, metrics
from shopstream.publisher import Publisher, PublishError, get_publisher
from shopstream.wire import OutgoingRecord, outgoing, to_record

OUTBOX_PREFIX = "OUTBOX#"
OUTBOX_SORT_KEY = "OUTBOX"
MAX_TRANSACTION_ITEMS = 100


class ConditionFailed(Exception):
    """A condition in the transaction did not hold. ``reasons[i]`` is the code for action i."""

    def __init__(self, reasons: list[str | None]):
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons

    def failed_indexes(self) -> list[int]:
        return [i for i, code in enumerate(self.reasons) if code == "ConditionalCheckFailed"]


def _to_attributes(values: dict[str, Any] | None) -> dict[str, Any] | None:
    return to_attributes(values) if values else None


class UnitOfWork:
    """One TransactWriteItems call. Store modules add their operations; ``emit`` adds events."""

    def __init__(self, table_name: str | None = None):
        self.table_name = table_name or get_settings().table_name
        self.actions: list[dict[str, Any]] = []
        self.events: list[EventEnvelope] = []

    def _action(self, kind: str, body: dict[str, Any], condition: str | None,
                names: dict[str, str] | None, values: dict[str, Any] | None) -> None:
        body = {"TableName": self.table_name, **body}
        if condition:
            body["ConditionExpression"] = condition
        if names:
            body["ExpressionAttributeNames"] = names
        attribute_values = _to_attributes(values)
        if attribute_values:
            body["ExpressionAttributeValues"] = attribute_values
        self.actions.append({kind: body})

    def put(self, item: dict[str, Any], *, condition: str | None = None,
            names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> None:
        self._action("Put", {"Item": _to_attributes(item)}, condition, names, values)

    def update(self, key: dict[str, Any], *, update: str, condition: str | None = None,
               names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> None:
        self._action("Update", {"Key": _to_attributes(key), "UpdateExpression": update}, condition, names, values)

    def delete(self, key: dict[str, Any], *, condition: str | None = None,
               names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> None:
        self._action("Delete", {"Key": _to_attributes(key)}, condition, names, values)

    def check(self, key: dict[str, Any], *, condition: str,
              names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> None:
        self._action("ConditionCheck", {"Key": _to_attributes(key)}, condition, names, values)

    def emit(self, envelope: EventEnvelope) -> None:
        """Queue an event; it is written as an outbox item in the same transaction."""
        record = to_record(envelope)  # validates topic and key now, not in the relay
        item = {
            "pk": f"{OUTBOX_PREFIX}{envelope.event_id}",
            "sk": OUTBOX_SORT_KEY,
            "eventId": envelope.event_id,
            "eventType": envelope.event_type,
            "eventVersion": envelope.event_version,
            "correlationId": envelope.correlation_id,
            "topic": record.topic,
            "key": record.key,
            "payload": record.value.decode("utf-8"),
            "ttl": int(time.time()) + get_settings().outbox_ttl_seconds,
        }
        self.put(item, condition="attribute_not_exists(pk)")
        self.events.append(envelope)

    def commit(self) -> None:
        if not self.actions:
            return
        if len(self.actions) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"{len(self.actions)} actions exceed DynamoDB's {MAX_TRANSACTION_ITEMS} per transaction")
        dynamodb = aws.client("dynamodb")
        try:
            dynamodb.transact_write_items(TransactItems=self.actions)
        except dynamodb.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") if r.get("Code") != "None" else None
                       for r in exc.response.get("CancellationReasons", [])]
            if any(code == "ConditionalCheckFailed" for code in reasons):
                raise ConditionFailed(reasons) from exc
            raise


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


class OutboxRelay:
    """DynamoDB stream -> Kafka. Lambda entry point; reports per-record failures."""

    def __init__(self, publisher: Publisher | None = None):
        self._publisher = publisher

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        from aws_lambda_powertools.metrics import MetricUnit
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

        publisher = self._publisher or get_publisher()
        sequence_by_event: dict[str, str] = {}

        def publish(record: Any) -> None:
            raw = record.raw_event
            if raw.get("eventName") != "INSERT":
                return
            out = outbox_record(raw["dynamodb"].get("NewImage") or {})
            if out is None:
                return
            publisher.publish(out)  # asynchronous; acknowledged by flush below
            sequence_by_event[out.event_id] = raw["dynamodb"]["SequenceNumber"]

        processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
        with processor(records=event["Records"], handler=publish, lambda_context=context):
            processor.process()
        response = processor.response()
        try:
            publisher.flush()
            published = len(sequence_by_event)
        except PublishError as exc:
            undelivered = set(sequence_by_event) if "<undelivered>" in exc.failed else set(exc.failed)
            failures = [{"itemIdentifier": sequence_by_event[e]} for e in undelivered if e in sequence_by_event]
            response = {"batchItemFailures": [*response["batchItemFailures"], *failures]}
            published = len(sequence_by_event) - len(failures)
            logger().error("outbox records not delivered; will be retried", extra={"failed": exc.failed})
        metrics().add_metric(name="OutboxPublished", unit=MetricUnit.Count, value=published)
        flush_metrics()
        return response


relay_handler = OutboxRelay()
