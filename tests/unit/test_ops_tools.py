"""The operations CLI's Kafka tools without a broker: what `produce` refuses and how `tail` shows records."""

from __future__ import annotations

import json

import pytest

from local import ops
from local.samples import sample_event


def _text(*envelopes) -> str:
    return json.dumps([json.loads(e.model_dump_json(by_alias=True)) for e in envelopes])


def test_produce_accepts_valid_envelopes_keyed_as_the_relay_would():
    created, confirmed = sample_event("OrderCreated"), sample_event("OrderConfirmed")
    records = ops.validated_records("order-events", _text(created, confirmed))
    assert [(r.topic, r.key, r.event_id) for r in records] == [
        ("order-events", "o-1", created.event_id), ("order-events", "o-1", confirmed.event_id)]
    assert dict(records[0].headers)["eventType"] == b"OrderCreated"
    single = ops.validated_records("order-events", created.model_dump_json(by_alias=True))
    assert len(single) == 1


@pytest.mark.parametrize("topic, body, refusal", [
    ("order-events", "{not json", "not JSON"),
    ("payment-events", "OrderCreated", "belongs on order-events"),
    ("order-events", {"eventType": "OrderCreated", "data": {"orderId": ""}}, "envelope 0"),
    ("order-events", {"eventType": "OrderTeleported", "data": {}}, "unknown_event_type"),
    ("order-events", {"eventType": "OrderCreated", "eventVersion": "v9", "data": {}}, "unsupported_version"),
    ("order-events", {"eventType": "OrderCreated", "data": {"orderId": "o-1"}}, "invalid_data"),
])
def test_produce_refuses_what_a_consumer_would_dead_letter(topic, body, refusal):
    if body == "OrderCreated":
        text = sample_event("OrderCreated").model_dump_json(by_alias=True)
    elif isinstance(body, dict):
        base = json.loads(sample_event("OrderCreated").model_dump_json(by_alias=True))
        text = json.dumps({**base, **body})
    else:
        text = body
    with pytest.raises(ValueError, match=refusal):
        ops.validated_records(topic, text)


def test_unknown_topics_are_refused():
    with pytest.raises(KeyError):
        ops.validated_records("no-such-topic", "{}")


def test_tail_shows_envelopes_and_anything_else_as_text_or_hex():
    envelope = sample_event("PaymentFailed")
    shown = ops.describe_record("payment-events", 3, 17, b"o-1", envelope.model_dump_json(by_alias=True).encode())
    assert shown.startswith("payment-events[3]@17 key=o-1  PaymentFailed v1")
    assert f"id={envelope.event_id}" in shown and '"declineCode":"card_declined"' in shown
    assert "NOT AN ENVELOPE: {not json" in ops.describe_record("order-events", 0, 1, b"k", b"{not json")
    assert "NOT AN ENVELOPE: ff fe 00" in ops.describe_record("order-events", 0, 2, None, b"\xff\xfe\x00")
    assert ops.readable(None) == {"none": True}


def test_a_replay_that_asks_for_records_past_retention_is_told_where_the_log_starts():
    logs = {0: (0, 50), 1: (40, 90), 2: (40, 90), 3: (40, 90), 4: (40, 40)}
    # from offsets: partition 1 asked below its first record, 2 at it; from a time: 3 landed on its first record
    # (what came before it may have been after the time); 0 has lost nothing; 4 asked past its end
    asked = {0: 0, 1: 10, 2: 40, 3: None, 4: 40}
    assert ops.retention_gaps(asked, logs) == {1: 40, 3: 40}
    assert ops.retention_gaps(dict.fromkeys(logs, 0), logs) == {1: 40, 2: 40, 3: 40, 4: 40}  # from the beginning


def test_a_deployed_environments_archive_bucket_is_named_as_the_platform_stack_names_it(monkeypatch):
    from moto import mock_aws

    from shopstream import aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    try:
        with mock_aws():
            bucket = ops.Target("prod").archive_bucket()
    finally:
        aws.reset_clients()
    assert bucket == "shopstream-prod-audit-archive-123456789012-eu-central-1"
