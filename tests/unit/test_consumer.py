"""The consumer runtime against MSK-shaped batches, with moto for DynamoDB and SQS."""

from __future__ import annotations

import base64
import json

import pytest

from local import naming
from local.context import LocalLambdaContext
from local.samples import batch, kafka_record_of, product_created, raw_record, sample_event
from shopstream.consumer import EventConsumer, InboundEvent, PoisonRecord
from shopstream.inbound import Handled


class Recorder:
    """The handler's side effect: appends what it applied; can fail on chosen event ids."""

    def __init__(self):
        self.applied: list[str] = []
        self.fail_once: set[str] = set()
        self.poison: set[str] = set()

    def __call__(self, inbound: InboundEvent) -> None:
        event_id = inbound.envelope.event_id
        if event_id in self.fail_once:
            self.fail_once.discard(event_id)
            raise ConnectionError("table throttled")
        if event_id in self.poison:
            raise PoisonRecord("business_rule", "product already exists with another sku")
        self.applied.append(event_id)


@pytest.fixture
def consumer(service_env):
    env = service_env("inventory", "product-sync")
    recorder = Recorder()
    # The runtime's mechanics with a Powertools idempotency record, one record at a time (whatever the catalog
    # says of this handler; key-parallel batches have tests of their own below).
    return EventConsumer("inventory", "product-sync", recorder, idempotent=True, concurrency=1), recorder, env


def dlq_messages(aws, env) -> list[dict]:
    out: list[dict] = []
    while True:
        got = aws["sqs"].receive_message(QueueUrl=env["SHOPSTREAM_DLQ_URL"], MaxNumberOfMessages=10)
        if not got.get("Messages"):
            return out
        for message in got["Messages"]:
            out.append(json.loads(message["Body"]))
            aws["sqs"].delete_message(QueueUrl=env["SHOPSTREAM_DLQ_URL"], ReceiptHandle=message["ReceiptHandle"])


def test_a_valid_batch_is_applied_in_order(consumer):
    run, recorder, _ = consumer
    events = [product_created(f"p-{i}") for i in range(3)]
    response = run(batch(*(kafka_record_of(e, offset=10 + i) for i, e in enumerate(events))), LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    assert recorder.applied == [e.event_id for e in events]


def _poison_cases():
    good = json.loads(product_created().model_dump_json(by_alias=True))
    return [
        ("not_json", b"\xff\xfe not utf-8"),
        ("not_json", b"{half a json"),
        ("invalid_envelope", b"[1, 2, 3]"),
        ("invalid_envelope", json.dumps({**good, "eventId": "nope"}).encode()),
        ("unknown_event_type", json.dumps({**good, "eventType": "ProductTeleported"}).encode()),
        ("unsupported_version", json.dumps({**good, "eventVersion": "v9"}).encode()),
        ("invalid_data",
         json.dumps({**good, "data": {**good["data"], "price": {"amount": -1, "currency": "EUR"}}}).encode()),
        ("empty_value", None),
        ("wrong_topic", json.dumps({**good, "eventType": "UserDeactivated"}).encode()),
    ]


@pytest.mark.parametrize("reason, value", _poison_cases())
def test_poison_goes_to_the_dlq_with_raw_bytes_and_the_partition_moves_on(consumer, aws, reason, value):
    run, recorder, env = consumer
    before, after = product_created("p-before"), product_created("p-after")
    if reason == "wrong_topic":
        # A user event's envelope published on catalog-events: valid JSON, wrong place.
        wrong = sample_event("UserDeactivated")
        value = wrong.model_dump_json(by_alias=True).encode()
        run.accepts = run.accepts | {"UserDeactivated"}
    event = batch(
        kafka_record_of(before, offset=1),
        raw_record(value, offset=2, headers=[("eventType", b"garbage")]),
        kafka_record_of(after, offset=3),
    )
    assert run(event, LocalLambdaContext()) == {"batchItemFailures": []}
    assert recorder.applied == [before.event_id, after.event_id]
    [message] = dlq_messages(aws, env)
    assert message["kind"] == "poison" and message["reason"] == reason
    assert message["handler"] == "inventory.product-sync"
    assert (message["topic"], message["partition"], message["offset"]) == ("catalog-events", 0, 2)
    assert message["value"] == (base64.b64encode(value).decode() if value is not None else None)
    assert message["key"] == base64.b64encode(b"k").decode()
    assert base64.b64decode(message["headers"]["eventType"]) == b"garbage"
    assert message["detail"]


def test_a_handler_can_reject_an_event_as_poison(consumer, aws):
    run, recorder, env = consumer
    event = product_created("p-dup")
    recorder.poison.add(event.event_id)
    assert run(batch(kafka_record_of(event)), LocalLambdaContext()) == {"batchItemFailures": []}
    [message] = dlq_messages(aws, env)
    assert message["reason"] == "business_rule" and "another sku" in message["detail"]


def test_events_the_handler_does_not_take_are_skipped_not_dead_lettered(consumer, aws):
    run, recorder, env = consumer
    updated = sample_event("ProductUpdated")  # product-sync takes ProductCreated/Discontinued only
    assert run(batch(kafka_record_of(updated)), LocalLambdaContext()) == {"batchItemFailures": []}
    assert recorder.applied == [] and dlq_messages(aws, env) == []


def test_the_same_batch_twice_has_its_side_effects_once(consumer):
    run, recorder, _ = consumer
    events = [product_created(f"p-{i}") for i in range(5)]
    records = [kafka_record_of(e, partition=i % 2, offset=20 + i) for i, e in enumerate(events)]
    assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
    assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
    assert sorted(recorder.applied) == sorted(e.event_id for e in events)
    assert len(recorder.applied) == 5


def test_a_transient_failure_names_exactly_that_record_and_a_retry_completes_the_batch(consumer):
    run, recorder, _ = consumer
    events = [product_created(f"p-{i}") for i in range(3)]
    recorder.fail_once.add(events[1].event_id)
    records = [kafka_record_of(e, partition=3, offset=40 + i) for i, e in enumerate(events)]
    response = run(batch(*records), LocalLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": {"partition": "catalog-events-3", "offset": 41}}]}
    assert recorder.applied == [events[0].event_id, events[2].event_id]
    # The ESM redelivers from the failed offset; already-applied events are not applied again.
    assert run(batch(*records[1:]), LocalLambdaContext()) == {"batchItemFailures": []}
    assert sorted(recorder.applied) == sorted(e.event_id for e in events)


class BrokenDeadLetters:
    def send(self, message):
        raise ConnectionError("SQS unavailable")


def test_poison_is_retried_rather_than_lost_when_the_dlq_is_unreachable(service_env):
    service_env("inventory", "product-sync")
    run = EventConsumer("inventory", "product-sync", Recorder(), dead_letters=BrokenDeadLetters(), idempotent=True)
    records = [raw_record(b"nope", partition=1, offset=7), kafka_record_of(product_created(), offset=8)]
    response = run(batch(*records), LocalLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": {"partition": "catalog-events-1", "offset": 7}}]}


def test_after_a_failure_later_records_of_the_same_key_wait_and_are_applied_in_order(consumer):
    """Partial batch failure keeps per-key order: record N+1 of a key never takes effect before N."""
    run, recorder, _ = consumer
    first, second = product_created("p-same"), product_created("p-same")  # one key, two events
    other = product_created("p-other")
    recorder.fail_once.add(first.event_id)
    records = [kafka_record_of(first, partition=2, offset=50), kafka_record_of(second, partition=2, offset=51),
               kafka_record_of(other, partition=2, offset=52)]
    response = run(batch(*records), LocalLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": {"partition": "catalog-events-2", "offset": 50}},
                                              {"itemIdentifier": {"partition": "catalog-events-2", "offset": 51}}]}
    assert recorder.applied == [other.event_id]  # another key goes on
    # The mapping redelivers from offset 50: the key's records apply in their order, the other once.
    assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
    assert recorder.applied == [other.event_id, first.event_id, second.event_id]


def test_a_key_held_back_in_one_batch_is_not_held_in_the_next(consumer):
    run, recorder, _ = consumer
    first, second, other = product_created("p-k"), product_created("p-k"), product_created("p-x")
    recorder.fail_once.add(first.event_id)
    run(batch(kafka_record_of(first, offset=60), kafka_record_of(second, offset=61),
              kafka_record_of(other, offset=62)), LocalLambdaContext())
    assert recorder.applied == [other.event_id]
    fresh = product_created("p-k")
    assert run(batch(kafka_record_of(fresh, offset=63)), LocalLambdaContext()) == {"batchItemFailures": []}
    assert recorder.applied == [other.event_id, fresh.event_id]


def _write_item(pk: str, **attributes) -> None:
    from shopstream.transaction import UnitOfWork

    uow = UnitOfWork()
    uow.put({"pk": pk, "sk": "X", **attributes})
    uow.commit()


@pytest.mark.parametrize("write", [
    pytest.param(lambda: _write_item("K" * 2100), id="partition-key-over-2048-bytes"),
    pytest.param(lambda: _write_item("ok", blob="x" * 410_000), id="item-over-400-KB"),
])
def test_a_record_that_can_never_be_stored_is_dead_lettered_and_the_partition_moves_on(service_env, aws, write):
    """DynamoDB refuses the same values on every retry: dead-letter with the bytes, do not retry."""
    env = service_env("inventory", "product-sync")
    stuck, after = product_created("p-stuck"), product_created("p-next")
    applied = []

    def handle(inbound: InboundEvent) -> None:
        if inbound.envelope.event_id == stuck.event_id:
            write()
        applied.append(inbound.envelope.event_id)

    run = EventConsumer("inventory", "product-sync", handle)
    response = run(batch(kafka_record_of(stuck, offset=70), kafka_record_of(after, offset=71)), LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    assert applied == [after.event_id]
    [message] = dlq_messages(aws, env)
    assert message["reason"] == "unstorable" and message["offset"] == 70
    assert json.loads(base64.b64decode(message["value"]))["eventId"] == stuck.event_id


def test_a_state_guarded_handler_keeps_no_idempotency_record_and_a_redelivery_reaches_it(service_env, aws):
    """catalog: inventory.product-sync is state-guarded (its conditional writes are its idempotency)."""
    env = service_env("inventory", "product-sync")
    seen = Recorder()
    run = EventConsumer("inventory", "product-sync", seen)
    event = product_created("p-guarded")
    for _ in range(2):
        assert run(batch(kafka_record_of(event, offset=80)), LocalLambdaContext()) == {"batchItemFailures": []}
    assert seen.applied == [event.event_id, event.event_id]  # the handler itself must make this harmless
    assert aws["dynamodb"].scan(TableName=env["SHOPSTREAM_IDEMPOTENCY_TABLE_NAME"])["Count"] == 0


# --- key-ordered parallelism inside a batch (shopstream/batch.py) ---------------------------------
class Concurrent(Recorder):
    """Each record of ``meet`` waits at a barrier for the others: it only passes if they run at once."""

    def __init__(self, meet: int):
        super().__init__()
        import threading

        self.barrier = threading.Barrier(meet, timeout=10)
        self.lock = threading.Lock()

    def __call__(self, inbound: InboundEvent) -> None:
        if inbound.data.product_id.startswith("meet-"):
            self.barrier.wait()  # BrokenBarrierError (a failed record) if the keys ran one by one
        with self.lock:
            super().__call__(inbound)


def test_records_of_different_keys_run_at_once(service_env):
    service_env("inventory", "product-sync")
    handler = Concurrent(meet=4)
    run = EventConsumer("inventory", "product-sync", handler, idempotent=True, concurrency=4)
    events = [product_created(f"meet-{i}") for i in range(4)]
    records = [kafka_record_of(e, partition=0, offset=100 + i) for i, e in enumerate(events)]
    assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
    assert sorted(handler.applied) == sorted(e.event_id for e in events)


def test_one_keys_records_stay_in_order_while_other_keys_run_beside_them(service_env):
    service_env("inventory", "product-sync")
    handler = Recorder()
    run = EventConsumer("inventory", "product-sync", handler, idempotent=True, concurrency=8)
    same = [product_created("p-ordered") for _ in range(6)]
    others = [product_created(f"p-other-{i}") for i in range(6)]
    interleaved = [e for pair in zip(same, others, strict=True) for e in pair]
    records = [kafka_record_of(e, partition=0, offset=200 + i) for i, e in enumerate(interleaved)]
    assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
    assert [e for e in handler.applied if e in {s.event_id for s in same}] == [e.event_id for e in same]
    assert len(handler.applied) == 12


def test_a_concurrency_cap_in_the_settings_runs_a_batchs_keys_one_at_a_time(service_env, monkeypatch):
    """The local runtime caps every handler at one key at a time (Settings.handler_concurrency_cap): the same
    batch whose keys run on the pool's threads without the cap runs on the caller's thread with it."""
    import threading

    from shopstream.config import reset_settings

    service_env("inventory", "product-sync")
    threads: list[int] = []
    run = EventConsumer("inventory", "product-sync", lambda inbound: threads.append(threading.get_ident()),
                        concurrency=8)
    events = [product_created(f"p-{i}") for i in range(4)]

    def deliver(first: int) -> set[int]:
        threads.clear()
        records = [kafka_record_of(e, partition=0, offset=first + i) for i, e in enumerate(events)]
        assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
        return set(threads)

    assert threading.get_ident() not in deliver(400)  # the pool's threads
    monkeypatch.setenv("SHOPSTREAM_HANDLER_CONCURRENCY_CAP", "1")
    reset_settings()
    assert deliver(500) == {threading.get_ident()}


def test_in_parallel_a_failed_key_holds_back_only_its_own_later_records(service_env):
    service_env("inventory", "product-sync")
    handler = Recorder()
    run = EventConsumer("inventory", "product-sync", handler, idempotent=True, concurrency=8)
    a1, a2, b1, b2 = (product_created("p-a"), product_created("p-a"), product_created("p-b"),
                      product_created("p-b"))
    handler.fail_once.add(a1.event_id)
    records = [kafka_record_of(e, partition=1, offset=300 + i) for i, e in enumerate([a1, b1, a2, b2])]
    response = run(batch(*records), LocalLambdaContext())
    failed = sorted(f["itemIdentifier"]["offset"] for f in response["batchItemFailures"])
    assert failed == [300, 302]  # a1 failed, a2 held back; b1 and b2 applied
    assert handler.applied == [b1.event_id, b2.event_id]


def test_after_batch_gets_the_events_handled_in_offset_order_and_its_failure_fails_the_invocation(service_env, aws):
    """Work done per batch (the audit archive): it sees what was handled (not the failed, skipped or
    poisoned records); should it fail, the invocation fails and Lambda delivers the batch again."""
    service_env("inventory", "product-sync")
    recorder = Recorder()
    batches: list[list[tuple[int, int]]] = []
    broken = {"now": True}

    def after(handled: list[Handled]) -> None:
        if broken["now"]:
            broken["now"] = False
            raise ConnectionError("S3 unavailable")
        batches.append([(h.event.partition, h.event.offset) for h in handled])

    run = EventConsumer("inventory", "product-sync", recorder, concurrency=4, after_batch=after)
    events = [product_created(f"p-{i}") for i in range(6)]
    recorder.fail_once.add(events[4].event_id)
    recorder.poison.add(events[5].event_id)
    records = [kafka_record_of(e, partition=i % 2, offset=60 + i) for i, e in enumerate(events)]
    records.append(kafka_record_of(sample_event("ProductUpdated"), partition=0, offset=70))  # skipped
    with pytest.raises(ConnectionError):
        run(batch(*records), LocalLambdaContext())
    assert batches == []
    response = run(batch(*records), LocalLambdaContext())  # the whole batch again; event 4 is handled now
    assert response == {"batchItemFailures": []}
    assert batches == [[(0, 60), (0, 62), (0, 64), (1, 61), (1, 63)]]


def test_after_batch_gets_what_each_handler_returned_with_its_event_also_from_threads(service_env, aws):
    """The analytics' counts: each handler returns its event's, written once for the batch."""
    service_env("inventory", "product-sync")
    seen: list[tuple[int, object]] = []
    run = EventConsumer("inventory", "product-sync", lambda inbound: f"counted {inbound.offset}", concurrency=4,
                        after_batch=lambda handled: seen.extend((h.event.offset, h.outcome) for h in handled))
    records = [kafka_record_of(product_created(f"p-{i}"), partition=i % 2, offset=10 + i) for i in range(4)]
    assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
    assert seen == [(10, "counted 10"), (12, "counted 12"), (11, "counted 11"), (13, "counted 13")]


def test_an_idempotency_record_keeps_no_outcome_and_a_duplicate_hands_after_batch_none(service_env, aws):
    """Powertools keeps what its function returns as JSON and answers a duplicate with it: an outcome that is no
    JSON (the analytics' tallies) would fail the record, and a duplicate would hand on the first delivery's."""
    service_env("inventory", "product-sync")

    class Tally:  # not JSON
        def __init__(self, offset: int):
            self.offset = offset

    seen: list[tuple[int, object]] = []
    run = EventConsumer("inventory", "product-sync", lambda inbound: Tally(inbound.offset), idempotent=True,
                        after_batch=lambda handled: seen.extend((h.event.offset, h.outcome) for h in handled))
    record = kafka_record_of(product_created("p-1"), partition=0, offset=10)
    assert run(batch(record), LocalLambdaContext()) == {"batchItemFailures": []}
    [(offset, outcome)] = seen
    assert offset == 10 and isinstance(outcome, Tally) and outcome.offset == 10
    seen.clear()
    again = kafka_record_of(product_created("p-1"), partition=0, offset=11)  # another event: counted
    assert run(batch(record, again), LocalLambdaContext()) == {"batchItemFailures": []}
    assert [(o, type(t).__name__) for o, t in seen] == [(10, "NoneType"), (11, "Tally")]
    from shopstream import aws

    records = aws.client("dynamodb").scan(TableName=naming.idempotency_table("inventory"))["Items"]
    assert len(records) == 2 and {r["data"]["S"] for r in records} == {"null"}  # the records kept no outcome


def test_the_handlers_that_count_their_batches_outcomes_keep_no_idempotency_record():
    """A redelivery answered by a record hands after_batch no outcome: the analytics' counts would lose it."""
    from audit import consumers

    counting = [c for c in vars(consumers).values() if isinstance(c, EventConsumer)
                and getattr(c._after_batch, "__name__", "") == "count_batch"]
    assert len(counting) == 3 and not any(c.idempotent for c in counting)


# --- whole-batch mode: the mapping does not take a partial batch response (on-demand pollers) -----------------
@pytest.fixture
def whole_batch(consumer, monkeypatch):
    """The consumer as the stacks configure it behind an on-demand mapping (cdk.json eventPollers.mode)."""
    from shopstream.config import PARTIAL_BATCH_RESPONSE_ENV, reset_settings

    monkeypatch.setenv(PARTIAL_BATCH_RESPONSE_ENV, "false")
    reset_settings()
    return consumer


def test_the_mode_is_read_from_the_environment_and_partial_responses_are_the_default():
    from shopstream.config import PARTIAL_BATCH_RESPONSE_ENV, settings_from

    assert settings_from({}).partial_batch_response is True
    assert settings_from({PARTIAL_BATCH_RESPONSE_ENV: "false"}).partial_batch_response is False


def test_in_whole_batch_mode_a_failed_record_fails_the_invocation_and_the_redelivery_applies_the_rest_once(
        whole_batch):
    """A response naming the failed record would be ignored, its offset committed: the record lost. So the
    invocation fails once the records it can apply are applied; the whole batch comes again."""
    from shopstream.consumer import BatchFailed

    run, recorder, _ = whole_batch
    first, second, other = product_created("p-same"), product_created("p-same"), product_created("p-other")
    recorder.fail_once.add(first.event_id)
    records = [kafka_record_of(first, partition=2, offset=50), kafka_record_of(second, partition=2, offset=51),
               kafka_record_of(other, partition=2, offset=52)]
    with pytest.raises(BatchFailed, match="2 of 3 records"):
        run(batch(*records), LocalLambdaContext())
    assert recorder.applied == [other.event_id]  # the key that failed waits; another key goes on
    assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
    assert recorder.applied == [other.event_id, first.event_id, second.event_id]  # each once, the key in order


def test_in_whole_batch_mode_poison_is_dead_lettered_once_with_the_batch_that_succeeds(whole_batch, aws):
    from shopstream.consumer import BatchFailed

    run, recorder, env = whole_batch
    before, after = product_created("p-before"), product_created("p-after")
    recorder.fail_once.add(after.event_id)
    records = [kafka_record_of(before, offset=1), raw_record(b"\xff not json", offset=2),
               kafka_record_of(after, offset=3)]
    for _ in range(2):  # the failing record comes back with the whole batch, the poison record with it
        with pytest.raises(BatchFailed):
            run(batch(*records), LocalLambdaContext())
        recorder.fail_once.add(after.event_id)
        assert dlq_messages(aws, env) == []
    recorder.fail_once.clear()
    assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}  # the partition moves on
    [message] = dlq_messages(aws, env)
    assert (message["reason"], message["offset"]) == ("not_json", 2)
    assert recorder.applied == [before.event_id, after.event_id]


def test_in_whole_batch_mode_after_batch_still_gets_what_was_applied_before_the_invocation_fails(whole_batch):
    from shopstream.consumer import BatchFailed

    _, recorder, _ = whole_batch
    archived: list[list[int]] = []
    run = EventConsumer("inventory", "product-sync", recorder, idempotent=True,
                        after_batch=lambda handled: archived.append([h.event.offset for h in handled]))
    events = [product_created(f"p-{i}") for i in range(3)]
    recorder.fail_once.add(events[1].event_id)
    records = [kafka_record_of(e, offset=90 + i) for i, e in enumerate(events)]
    with pytest.raises(BatchFailed):
        run(batch(*records), LocalLambdaContext())
    assert archived == [[90, 92]]


def test_a_seeded_interleaving_keeps_each_keys_order_and_holds_back_a_failed_keys_records(service_env):
    """The simulation's way to run a batch's keys (no threads): each key in order, the failed one held back."""
    import random

    from shopstream.batch import SeededInterleaving

    service_env("inventory", "product-sync")
    handler = Recorder()
    run = EventConsumer("inventory", "product-sync", handler, concurrency=4)
    run.run_groups = SeededInterleaving(random.Random(3))
    keys = {k: [product_created(f"p-{k}") for _ in range(3)] for k in "abcd"}
    handler.fail_once.add(keys["a"][1].event_id)
    order = [keys[k][n] for n in range(3) for k in "abcd"]
    records = [kafka_record_of(e, partition=0, offset=400 + i) for i, e in enumerate(order)]
    response = run(batch(*records), LocalLambdaContext())
    failed = sorted(f["itemIdentifier"]["offset"] for f in response["batchItemFailures"])
    assert failed == [404, 408]  # a's second record failed, its third held back
    for k, events in keys.items():
        expected = events[:1] if k == "a" else events
        assert [e for e in handler.applied if e in {x.event_id for x in events}] == [e.event_id for e in expected]
    applied_in_offset_order = [e.event_id for e in order if e.event_id in handler.applied]
    assert handler.applied != applied_in_offset_order  # the keys really were interleaved otherwise


def test_a_handler_that_keeps_no_order_runs_one_keys_records_side_by_side_and_holds_nothing_back(service_env):
    """catalog: the audit trail (ordered=False). One busy key (an admin's actions) does not go one at a time."""
    service_env("audit", "trail-catalog")
    same_key = [product_created("meet-1") for _ in range(4)]
    handler = Concurrent(meet=4)
    run = EventConsumer("audit", "trail-catalog", handler, concurrency=4)
    records = [kafka_record_of(e, partition=0, offset=500 + i) for i, e in enumerate(same_key)]
    assert run(batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
    assert sorted(handler.applied) == sorted(e.event_id for e in same_key)

    recorder = Recorder()
    run = EventConsumer("audit", "trail-catalog", recorder, concurrency=4)
    again = [product_created("p-busy") for _ in range(3)]
    recorder.fail_once.add(again[0].event_id)
    response = run(batch(*(kafka_record_of(e, partition=0, offset=600 + i) for i, e in enumerate(again))),
                   LocalLambdaContext())
    assert [f["itemIdentifier"]["offset"] for f in response["batchItemFailures"]] == [600]  # 601, 602 applied
    assert sorted(recorder.applied) == sorted(e.event_id for e in again[1:])
