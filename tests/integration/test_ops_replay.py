"""`ops replay` against a real broker: it replays what each partition held when it began, however long an
invocation takes, leaves what is written meanwhile to the live mapping, and says where to go on from when it
stops short."""

from __future__ import annotations

import base64
import time
import uuid

import pytest

from local import ops, provision

pytestmark = pytest.mark.broker
HANDLER = "audit.trail-analytics"  # a topic no other broker test writes to (they share the session broker)


@pytest.fixture
def replaying(kafka_broker, monkeypatch):
    """Records put on the handler's topic, and a target whose invocations a test chooses."""
    from confluent_kafka import Producer

    provision.create_topics(kafka_broker)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_broker)
    _, handler = ops.find_handler(HANDLER)
    producer = Producer({"bootstrap.servers": kafka_broker})

    def put(count: int) -> set[str]:
        values = {f"replay-{uuid.uuid4()}" for _ in range(count)}
        for n, value in enumerate(sorted(values)):
            producer.produce(handler.topic, key=f"k-{n % 7}", value=value.encode())
        assert producer.flush(30) == 0
        return values

    target = ops.Target("local", in_process=True)

    def run(invoke, **options) -> tuple[int, list[str]]:
        monkeypatch.setattr(target, "invoker", lambda *_: invoke)
        said: list[str] = []
        code = ops.replay(target, HANDLER, from_timestamp=None, from_offsets=options.pop("from_offsets", None),
                          out=said.append, **options)
        return code, said

    return put, run, handler.batch_size


def _values(event) -> set[str]:
    return {base64.b64decode(r["value"]).decode() for batch in event["records"].values() for r in batch}


def test_a_replay_goes_on_after_an_invocation_slower_than_its_idle_wait(replaying):
    put, run, batch_size = replaying
    produced = put(3 * batch_size)
    seen: list[set[str]] = []

    def invoke(event):
        if not seen:
            time.sleep(1.5)  # the first invocation outlasts the idle wait (a cold start, provider calls)
        seen.append(_values(event))
        return {"batchItemFailures": []}

    code, said = run(invoke, idle_seconds=1.0)
    assert code == 0, said
    assert produced <= set().union(*seen) and len(seen) > 1


def test_records_written_during_a_replay_are_left_to_the_live_mapping_and_the_replay_ends(replaying):
    put, run, batch_size = replaying
    produced = put(batch_size)
    seen: list[set[str]] = []
    written: set[str] = set()

    def invoke(event):
        seen.append(_values(event))
        time.sleep(0.01)  # so that what is written now is stamped after the replay began
        written.update(put(20))  # live traffic, written while the replay runs
        return {"batchItemFailures": []}

    code, said = run(invoke, idle_seconds=10.0)
    assert code == 0, said
    assert produced <= set().union(*seen)
    assert not written & set().union(*seen)


def test_a_failed_invocation_stops_the_replay_and_says_where_to_go_on_from(replaying):
    put, run, batch_size = replaying
    produced = put(3 * batch_size)
    seen: list[set[str]] = []

    def failing(event):
        if len(seen) == 1:
            raise RuntimeError("function error: Unhandled")
        seen.append(_values(event))
        return {"batchItemFailures": []}

    code, said = run(failing)
    assert code == 1
    assert any(line.startswith("stopped: an invocation failed (RuntimeError") for line in said), said
    [resume] = [line.removeprefix("go on with: --from-offsets ") for line in said if line.startswith("go on with")]

    def working(event):
        seen.append(_values(event))
        return {"batchItemFailures": []}

    code, said = run(working, from_offsets=resume)
    assert code == 0, said
    assert produced <= set().union(*seen)


def test_a_start_past_a_partitions_end_replays_nothing_of_it(replaying):
    put, run, _ = replaying
    put(10)
    seen: list[set[str]] = []

    def invoke(event):
        seen.append(_values(event))
        return {"batchItemFailures": []}

    code, said = run(invoke, from_offsets=",".join(f"{p}:{10**9}" for p in range(64)))
    assert code == 0, said
    assert seen == [] and said[0].startswith("replayed 0 record(s)")
