"""The real path on the real protocol: outbox -> stream -> relay -> Tansu -> MSK-shaped event -> consumer."""

from __future__ import annotations

import uuid

import pytest
from moto import mock_aws

from local import naming, provision
from local.context import LocalLambdaContext
from local.samples import product_created
from shopstream.config import reset_settings
from shopstream.consumer import EventConsumer
from shopstream.publisher import KafkaPublisher, get_publisher
from shopstream.relay import OutboxRelay
from shopstream.transaction import UnitOfWork
from shopstream.wire import msk_event, msk_record
from tests.unit.test_outbox import stream_event

pytestmark = pytest.mark.broker


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0):
    import time

    from confluent_kafka import Consumer, Message

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            messages += [m for m in consumer.consume(100, 0.5) if m.error() is None]
    finally:
        consumer.close()
    return messages


def test_outbox_to_broker_to_consumer(kafka_broker, monkeypatch):
    provision.create_topics(kafka_broker)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_broker)
    with mock_aws():
        import boto3

        dynamodb = boto3.client("dynamodb")
        provision.create_tables(dynamodb)
        queues = provision.create_queues(boto3.client("sqs"))
        monkeypatch.setenv("SHOPSTREAM_TABLE_NAME", naming.table("catalog"))
        reset_settings()
        events = [product_created(f"rt-{uuid.uuid4()}") for _ in range(5)]
        for event in events:
            uow = UnitOfWork()
            uow.emit(event)
            uow.commit()
        assert isinstance(get_publisher(), KafkaPublisher)
        relay_response = OutboxRelay()(stream_event(dynamodb, naming.table("catalog")), LocalLambdaContext())
        assert relay_response == {"batchItemFailures": []}

        wanted = {e.event_id for e in events}
        messages = [m for m in consume_all(kafka_broker, "catalog-events", 5)
                    if dict(m.headers() or [])]
        by_key = {m.key().decode(): m for m in messages}
        assert {e.data["productId"] for e in events} <= set(by_key)

        # Feed what the broker holds back through the consumer runtime, as an ESM would.
        monkeypatch.setenv("SHOPSTREAM_IDEMPOTENCY_TABLE_NAME", naming.idempotency_table("inventory"))
        monkeypatch.setenv("SHOPSTREAM_DLQ_URL", queues[naming.dlq("inventory", "product-sync")])
        reset_settings()
        applied = []
        consumer = EventConsumer("inventory", "product-sync", lambda inbound: applied.append(inbound.envelope.event_id),
                                 idempotent=True)
        records = [msk_record(topic=m.topic(), partition=m.partition(), offset=m.offset(), key=m.key(),
                              value=m.value(), headers=m.headers() or [], timestamp_ms=m.timestamp()[1])
                   for m in messages]
        assert consumer(msk_event(records), LocalLambdaContext()) == {"batchItemFailures": []}
        assert wanted <= set(applied)
        headers = dict(by_key[events[0].data["productId"]].headers())
        assert headers == {"eventType": b"ProductCreated", "eventVersion": b"v1", "correlationId": b"corr-1"}
