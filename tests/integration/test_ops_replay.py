"""`ops replay` against a real broker: it replays up to the end each partition had when it began, however long
an invocation takes."""

from __future__ import annotations

import base64
import time
import uuid

import pytest

from local import provision
from tools import ops

pytestmark = pytest.mark.broker


def test_a_replay_goes_on_after_an_invocation_slower_than_its_idle_wait(kafka_broker, monkeypatch):
    from confluent_kafka import Producer

    provision.create_topics(kafka_broker)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_broker)
    service, handler = ops.find_handler("audit.trail-catalog")
    producer = Producer({"bootstrap.servers": kafka_broker})
    produced = {f"replay-{uuid.uuid4()}" for _ in range(3 * handler.batch_size)}
    for n, value in enumerate(sorted(produced)):
        producer.produce(handler.topic, key=f"k-{n % 7}", value=value.encode())
    assert producer.flush(30) == 0

    seen: list[set[str]] = []

    def invoke(event):
        values = {base64.b64decode(r["value"]).decode() for batch in event["records"].values() for r in batch}
        if not seen:
            time.sleep(1.5)  # the first invocation outlasts the idle wait (a cold start, provider calls)
        seen.append(values)
        return {"batchItemFailures": []}

    target = ops.Target("local", in_process=True)
    monkeypatch.setattr(target, "invoker", lambda *_: invoke)
    said: list[str] = []
    assert ops.replay(target, "audit.trail-catalog", from_timestamp=None, from_offsets=None, idle_seconds=1.0,
                      out=said.append) == 0, said
    assert produced <= set().union(*seen) and len(seen) > 1
