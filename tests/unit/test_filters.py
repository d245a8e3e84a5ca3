"""What a handler's mapping drops and what its function does with every kind of Kafka value.

The mappings have no filters (shopstream/filters.py: Lambda's handling of values that are not JSON
objects is undocumented), so every value reaches the function; there the only records skipped are
the topic's known event types the handler does not take, and everything else that cannot be applied
is dead-lettered with its bytes, never retried for ever and never skipped."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from local.context import LocalLambdaContext
from local.samples import batch, kafka_record_of, product_created, raw_record, sample_event
from shopstream import catalog
from shopstream.consumer import EventConsumer, InboundEvent
from shopstream.filters import esm_filter_patterns, passes, unwanted_event_types

HANDLER = catalog.service("inventory").handler("product-sync")  # ProductCreated, ProductDiscontinued
_GOOD = json.loads(product_created().model_dump_json(by_alias=True))

# Every kind of value a producer can put on the topic that is not an event the handler can apply.
POISON_VALUES = [
    pytest.param(b"42", "invalid_envelope", id="number"),
    pytest.param(b"[1]", "invalid_envelope", id="array"),
    pytest.param(b"null", "invalid_envelope", id="null"),
    pytest.param(b"true", "invalid_envelope", id="boolean"),
    pytest.param(b'"text"', "invalid_envelope", id="json-string"),
    pytest.param(b"text", "not_json", id="plain-text"),
    pytest.param(b"", "not_json", id="empty-bytes"),
    pytest.param(b"\xff\xfe\x00 not utf-8", "not_json", id="not-utf-8"),
    pytest.param(b"1" * 5000, "not_json", id="number-beyond-python-int-parsing"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "not_json", id="array-nested-too-deep"),
    pytest.param(json.dumps({"no": "eventType"}).encode(), "invalid_envelope", id="object-without-eventType"),
    pytest.param(json.dumps({**_GOOD, "eventType": "ProductTeleported"}).encode(), "unknown_event_type",
                 id="unknown-eventType"),
    pytest.param(json.dumps({**_GOOD, "eventType": 42}).encode(), "invalid_envelope", id="eventType-not-a-string"),
    pytest.param(json.dumps({**_GOOD, "eventType": "ProductUpdated", "eventId": "x"}).encode(), "invalid_envelope",
                 id="unwanted-eventType-in-an-invalid-envelope"),
    pytest.param(None, "empty_value", id="no-value"),
    # Parsed, a valid envelope, but nested deeper than the idempotency layer can copy it.
    pytest.param(json.dumps({**_GOOD, "metadata": {"extra": json.loads("[" * 700 + "]" * 700)}}).encode(),
                 "nested_too_deep", id="object-nested-too-deep"),
]


def _message(value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(value=lambda: value)


def test_no_handler_s_mapping_has_a_filter():
    for spec in catalog.SERVICES:
        for handler in spec.handlers:
            assert esm_filter_patterns(handler) == [], f"{spec.name}.{handler.name}"


@pytest.mark.parametrize("value, reason", POISON_VALUES)
def test_every_value_reaches_the_function_through_the_local_mapping(value, reason):
    from local.mapping import KafkaMapping

    mapping = KafkaMapping.__new__(KafkaMapping)  # only its filtering, no consumer group
    mapping.patterns = esm_filter_patterns(HANDLER)
    assert mapping._wanted(_message(value))
    assert passes(mapping.patterns, value)


def test_filters_that_cannot_be_imitated_faithfully_are_refused():
    with pytest.raises(ValueError, match="undocumented"):
        passes([{"value": {"eventType": [{"anything-but": ["ProductUpdated"]}]}}], b"42")


class Applied:
    def __init__(self):
        self.event_ids: list[str] = []

    def __call__(self, inbound: InboundEvent) -> None:
        self.event_ids.append(inbound.envelope.event_id)


@pytest.fixture
def consumer(service_env, aws):
    env = service_env("inventory", "product-sync")
    applied = Applied()
    return EventConsumer("inventory", "product-sync", applied, idempotent=True), applied, env, aws


def _dead_letters(aws, env) -> list[dict]:
    out = []
    while messages := aws["sqs"].receive_message(QueueUrl=env["SHOPSTREAM_DLQ_URL"],
                                                 MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            out.append(json.loads(message["Body"]))
            aws["sqs"].delete_message(QueueUrl=env["SHOPSTREAM_DLQ_URL"], ReceiptHandle=message["ReceiptHandle"])
    return out


@pytest.mark.parametrize("value, reason", POISON_VALUES)
def test_every_kind_of_poison_value_is_dead_lettered_with_its_bytes_and_the_partition_moves_on(
        consumer, value, reason):
    run, applied, env, aws = consumer
    before, after = product_created("p-before"), product_created("p-after")
    event = batch(kafka_record_of(before, offset=1), raw_record(value, offset=2), kafka_record_of(after, offset=3))
    assert run(event, LocalLambdaContext()) == {"batchItemFailures": []}  # no retry, no function error
    # both applied (their keys differ, so they may run side by side: catalog concurrency)
    assert sorted(applied.event_ids) == sorted([before.event_id, after.event_id])
    [message] = _dead_letters(aws, env)
    assert (message["reason"], message["offset"]) == (reason, 2)
    assert message["value"] == (base64.b64encode(value).decode() if value is not None else None)


def test_known_event_types_the_handler_does_not_take_are_the_only_records_skipped(consumer):
    run, applied, env, aws = consumer
    assert unwanted_event_types(HANDLER) == ["ProductUpdated"]
    unwanted = sample_event("ProductUpdated")
    with_header = kafka_record_of(unwanted, offset=1)
    without_header = {**kafka_record_of(unwanted, offset=2), "headers": []}  # recognised from its envelope
    wanted = kafka_record_of(product_created("p-wanted"), offset=3)
    assert run(batch(with_header, without_header, wanted), LocalLambdaContext()) == {"batchItemFailures": []}
    assert len(applied.event_ids) == 1 and _dead_letters(aws, env) == []
