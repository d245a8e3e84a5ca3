"""Outbox relay rate into the local broker, next to a raw confluent-kafka producer of the same
messages in the same run (target ratio >= 0.5)."""

from __future__ import annotations

import json
import os
import time
import uuid

from confluent_kafka import Producer

from local import provision
from local.context import LocalLambdaContext
from local.samples import sample_event
from shopstream.config import Settings
from shopstream.dynamo import to_attributes
from shopstream.publisher import KafkaPublisher, producer_config
from shopstream.relay import OutboxRelay
from shopstream.wire import to_record

ITEMS = int(os.environ.get("BENCH_ITEMS", 10_000))


def _stream_records(count: int) -> list[dict]:
    """DynamoDB stream INSERT records of outbox items, as the relay receives them."""
    records = []
    for n in range(count):
        envelope = sample_event("ProductCreated")
        out = to_record(envelope)
        image = {"pk": f"OUTBOX#{envelope.event_id}", "sk": "OUTBOX", "eventId": envelope.event_id,
                 "eventType": envelope.event_type, "eventVersion": "v1", "correlationId": envelope.correlation_id,
                 "topic": out.topic, "key": f"{out.key}-{n % 64}", "payload": out.value.decode(), "ttl": 1}
        records.append({"eventID": str(uuid.uuid4()), "eventName": "INSERT", "eventSource": "aws:dynamodb",
                        "dynamodb": {"Keys": to_attributes({"pk": image["pk"], "sk": "OUTBOX"}),
                                     "NewImage": to_attributes(image), "SequenceNumber": str(n),
                                     "StreamViewType": "NEW_IMAGE"}})
    return records


def measure(bootstrap: str) -> dict[str, float]:
    provision.create_topics(bootstrap)
    records = _stream_records(ITEMS)
    settings = Settings(kafka_bootstrap_servers=bootstrap)
    relay = OutboxRelay(KafkaPublisher(settings))
    relay({"Records": records[:10]}, LocalLambdaContext())  # connect outside the measurement
    started = time.perf_counter()
    for i in range(0, ITEMS, 100):
        assert relay({"Records": records[i:i + 100]}, LocalLambdaContext()) == {"batchItemFailures": []}
    relay_seconds = time.perf_counter() - started

    messages = [(json.loads(json.dumps(r["dynamodb"]["NewImage"]["key"]["S"])),
                 r["dynamodb"]["NewImage"]["payload"]["S"].encode()) for r in records]
    raw = Producer(producer_config(settings))
    raw.produce("catalog-events", key=b"warm", value=b"{}")
    raw.flush(10)
    started = time.perf_counter()
    for i in range(0, ITEMS, 100):  # same batching as the relay: 100 per flush
        for key, value in messages[i:i + 100]:
            raw.produce("catalog-events", key=key.encode(), value=value)
        raw.flush(10)
    raw_seconds = time.perf_counter() - started
    return {"items": ITEMS, "relay_per_second": ITEMS / relay_seconds, "raw_per_second": ITEMS / raw_seconds,
            "ratio": raw_seconds / relay_seconds}


def report(r: dict[str, float]) -> str:
    return ("| items | relay events/s | raw producer events/s (same batching) | ratio | target ≥ 0.5 |\n"
            "|---|---|---|---|---|\n"
            f"| {r['items']} | {r['relay_per_second']:.0f} | {r['raw_per_second']:.0f} | {r['ratio']:.2f} | "
            f"{'met' if r['ratio'] >= 0.5 else 'not met'} |")


if __name__ == "__main__":
    from local.stack import LocalStack

    stack = LocalStack().start()
    try:
        print(report(measure(stack.bootstrap_servers)))
    finally:
        stack.stop()
