"""The outbox relay: a table's DynamoDB stream -> Kafka (the Lambda function behind each service's stream mapping).

It publishes what the outbox (shopstream.outbox) committed, and where direct publish is on, only what the committing
function did not publish itself (shopstream.direct).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

# Powertools' batch module loads before pydantic does (shopstream.config), so it builds no pydantic model of every AWS
# event source, which it wants for type hints only (docs/decisions.md, 2026-11-29): ~30 ms of the relay's cold start.
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from shopstream import tracing
from shopstream.config import get_settings
from shopstream.observability import flush_metrics, logger, metrics
from shopstream.outbox import outbox_record, publish_attributes
from shopstream.publisher import Publisher, PublishError, get_publisher

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# shopstream.direct (with shopstream.dynamo and .aws: 1 ms on the relay's init, 4 ms compiled from source as on
# Lambda) is imported only where direct publish is on (Settings.direct_publish), as in shopstream.transaction; and
# tests/infra/code_calls.py counts what a function reaches through it for that setting only.


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
        publisher = self._publisher or get_publisher()
        sequence_by_event: dict[str, str] = {}
        traced = tracing.enabled()
        spans: dict[str, Any] = {}  # eventId -> its publish span, ended once the broker answered
        skipped: set[str] = set()  # sequence numbers of items their function published (direct)
        held: str | None = None  # the sequence number from which this batch is left for a later poll
        if get_settings().direct_publish:
            from shopstream import direct  # boto3's DynamoDB read-back: loaded where direct publish is on

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
