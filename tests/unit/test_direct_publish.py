"""Direct publish (shopstream.direct): a transaction's events leave right after its commit, never before, and the
outbox relay publishes exactly those that did not."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Collection
from typing import TypedDict

import pytest

from local.context import LocalLambdaContext
from local.samples import product_created
from shopstream import catalog, direct, transaction
from shopstream.publisher import InMemoryPublisher, PublishError, set_publisher
from shopstream.relay import OutboxRelay
from shopstream.transaction import ConditionFailed, UnitOfWork
from tests.unit.test_outbox import stream_event


@pytest.fixture
def catalog_table(service_env, monkeypatch):
    monkeypatch.setenv("SHOPSTREAM_DIRECT_PUBLISH", "true")
    return service_env("catalog")["SHOPSTREAM_TABLE_NAME"]


@pytest.fixture
def clock():
    """The grace's clock, fixed until a test moves it; the relay's waits are recorded and move it."""
    now = [1_000_000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    direct.set_clock(lambda: now[0], sleep)
    yield now, waits
    direct.set_clock()


class Broker(InMemoryPublisher):
    """Acknowledges what it is handed, except the event ids it is told to refuse."""

    def __init__(self, refuse: Collection[str] = frozenset()):
        super().__init__()
        self.refuse = refuse

    def deliver(self, records, timeout):
        self.records += [r for r in records if r.event_id not in self.refuse]
        if any(r.event_id in self.refuse for r in records):
            raise PublishError(dict.fromkeys(self.refuse, "Broker: Not enough in-sync replicas"))


def _commit(*events, product: str | None = None) -> UnitOfWork:
    uow = UnitOfWork()
    if product:
        uow.put({"pk": f"PRODUCT#{product}", "sk": "PRODUCT", "version": 1}, condition="attribute_not_exists(pk)")
    for event in events:
        uow.emit(event)
    uow.commit()
    return uow


def _outbox(aws, table: str) -> list[dict]:
    return [i for i in aws["dynamodb"].scan(TableName=table)["Items"] if i["pk"]["S"].startswith("OUTBOX#")]


def test_events_leave_only_once_the_commit_is_acknowledged_and_their_items_are_then_deleted(aws, catalog_table,
                                                                                           clock, monkeypatch):
    broker = Broker()
    set_publisher(broker)
    seen_at_acknowledgement: list[int] = []
    transaction.set_commit_hooks(acknowledged=lambda uow: seen_at_acknowledgement.append(len(broker.records)))
    try:
        event = product_created("p-1")
        _commit(event, product="p-1")
        with pytest.raises(ConditionFailed):  # refused: nothing leaves
            _commit(product_created("p-1"), product="p-1")
    finally:
        transaction.set_commit_hooks()
    assert seen_at_acknowledgement == [0]  # nothing had left when DynamoDB answered
    assert [r.event_id for r in broker.records] == [event.event_id]
    assert _outbox(aws, catalog_table) == []
    changes = [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"][:7])
               for r in stream_event(aws["dynamodb"], catalog_table)["Records"]]
    assert changes == [("INSERT", "PRODUCT"), ("INSERT", "OUTBOX#"), ("REMOVE", "OUTBOX#")]


def test_what_the_broker_did_not_acknowledge_stays_for_the_relay_and_the_commit_stands(aws, catalog_table, clock):
    kept, sent = product_created("p-1"), product_created("p-2")
    set_publisher(Broker(refuse={kept.event_id}))
    _commit(kept, sent)  # no exception: the relay is the fallback
    [item] = _outbox(aws, catalog_table)
    assert json.loads(item["payload"]["S"])["eventId"] == kept.event_id
    assert int(item["direct"]["N"]) == int((clock[0][0] + direct.GRACE_SECONDS) * 1000)


def test_a_function_that_cannot_reach_the_broker_leaves_everything_to_the_relay(aws, catalog_table, clock):
    class Unreachable(InMemoryPublisher):
        def deliver(self, records, timeout):
            raise RuntimeError("no bootstrap server answered")

    set_publisher(Unreachable())
    _commit(product_created("p-1"))
    assert len(_outbox(aws, catalog_table)) == 1


def test_the_relay_publishes_exactly_what_no_function_published(aws, catalog_table, clock):
    plain, published, refused, crashed = (product_created(f"p-{i}") for i in range(4))
    with pytest.MonkeyPatch.context() as patch:  # a function without direct publish
        patch.setenv("SHOPSTREAM_DIRECT_PUBLISH", "false")
        from shopstream.config import reset_settings

        reset_settings()
        _commit(plain)
    reset_settings()
    set_publisher(Broker(refuse={refused.event_id}))
    _commit(published)
    _commit(refused)
    direct.set_fault_hook(lambda stage: (_ for _ in ()).throw(KeyboardInterrupt()) if stage == "publish" else None)
    try:
        with pytest.raises(KeyboardInterrupt):  # the function stops between its commit and its publish
            _commit(crashed)
    finally:
        direct.set_fault_hook(None)
    clock[0][0] += direct.GRACE_SECONDS  # the relay reads a stream hop later
    relay_out, before = InMemoryPublisher(), direct.relayed.copy()
    response = OutboxRelay(relay_out)(stream_event(aws["dynamodb"], catalog_table), LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    assert sorted(r.event_id for r in relay_out.records) == sorted([plain.event_id, refused.event_id,
                                                                     crashed.event_id])
    assert clock[1] == []  # nothing within its grace: no wait
    # The published item's delete was in the batch: no read for it; the two others were read back.
    assert dict(direct.relayed - before) == {"published by their function": 1, "read back": 2, "relayed": 2}


def test_the_relay_waits_out_the_grace_of_an_item_its_function_may_still_be_publishing(aws, catalog_table, clock,
                                                                                       monkeypatch):
    slow, stopped = product_created("p-1"), product_created("p-2")
    set_publisher(Broker(refuse={slow.event_id, stopped.event_id}))
    _commit(slow)
    _commit(stopped)
    stream = stream_event(aws["dynamodb"], catalog_table)
    clock[0][0] += 0.1
    [slow_item] = [i for i in _outbox(aws, catalog_table) if slow.event_id in i["sk"]["S"]]

    def meanwhile(seconds: float) -> None:  # the slow function's publish and delete land during the wait
        aws["dynamodb"].delete_item(TableName=catalog_table, Key={"pk": slow_item["pk"], "sk": slow_item["sk"]})
        clock[0][0] += seconds

    monkeypatch.setattr(direct, "_sleep", meanwhile)
    relay_out = InMemoryPublisher()
    OutboxRelay(relay_out)(stream, LocalLambdaContext())
    assert [r.event_id for r in relay_out.records] == [stopped.event_id]
    assert clock[0][0] == pytest.approx(1_000_000.0 + direct.GRACE_SECONDS)  # waited until the grace ended, no more


def test_on_the_bus_the_relay_holds_the_batch_back_from_an_item_in_its_grace(aws, catalog_table, clock):
    first, young, after = (product_created(f"p-{i}") for i in range(3))
    set_publisher(Broker(refuse={first.event_id, young.event_id}))
    _commit(first)
    clock[0][0] += direct.GRACE_SECONDS
    _commit(young)
    set_publisher(None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOPSTREAM_DIRECT_PUBLISH", "false")
        from shopstream.config import reset_settings

        reset_settings()
        _commit(after)
    reset_settings()
    stream = stream_event(aws["dynamodb"], catalog_table)
    sequence = {json.loads(r["dynamodb"]["NewImage"]["payload"]["S"])["eventId"]: r["dynamodb"]["SequenceNumber"]
                for r in stream["Records"]}
    relay_out = InMemoryPublisher()
    response = OutboxRelay(relay_out, hold_back=True)(stream, LocalLambdaContext())
    assert [r.event_id for r in relay_out.records] == [first.event_id]  # nothing from the held item on
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence[young.event_id]}],
                        "heldBack": sequence[young.event_id]}
    assert clock[1] == []


def test_a_relay_not_told_of_direct_publish_publishes_direct_items_at_once(aws, catalog_table, clock, monkeypatch):
    event = product_created("p-1")
    set_publisher(Broker(refuse={event.event_id}))
    _commit(event)
    monkeypatch.setenv("SHOPSTREAM_DIRECT_PUBLISH", "false")
    from shopstream.config import reset_settings

    reset_settings()
    relay_out = InMemoryPublisher()
    OutboxRelay(relay_out, hold_back=True)(stream_event(aws["dynamodb"], catalog_table), LocalLambdaContext())
    assert [r.event_id for r in relay_out.records] == [event.event_id]


def test_a_commit_whose_answer_is_lost_is_sent_again_with_its_token_and_applies_once(aws, catalog_table, clock):
    from botocore.exceptions import ReadTimeoutError

    broker = Broker()
    set_publisher(broker)
    answers = iter([False, True])  # the first answer is lost, the second arrives

    def lose(uow):
        if not next(answers):
            raise ReadTimeoutError(endpoint_url="test")

    transaction.set_commit_hooks(acknowledged=lose)
    try:
        event = product_created("p-1")
        _commit(event, product="p-1")  # the repeat meets its own writes: DynamoDB answers success, writes nothing
    finally:
        transaction.set_commit_hooks()
    assert [r.event_id for r in broker.records] == [event.event_id]  # so the function knows, and publishes
    assert [r["eventName"] for r in stream_event(aws["dynamodb"], catalog_table)["Records"]] == [
        "INSERT", "INSERT", "REMOVE"]


def test_when_every_answer_is_lost_the_commit_fails_but_stands_and_nothing_leaves(aws, catalog_table, clock):
    from botocore.exceptions import ReadTimeoutError

    broker = Broker()
    set_publisher(broker)

    def lose(uow):
        raise ReadTimeoutError(endpoint_url="test")

    transaction.set_commit_hooks(acknowledged=lose)
    try:
        with pytest.raises(ReadTimeoutError):
            _commit(product_created("p-1"), product="p-1")
    finally:
        transaction.set_commit_hooks()
    assert broker.records == [] and len(_outbox(aws, catalog_table)) == 1  # the relay's to publish


class _Kind(TypedDict, total=False):
    """Which of a service's functions an environment is for (function_environment's keywords): one of them."""

    handler: catalog.HandlerSpec
    api: bool
    relay: bool


def test_only_the_critical_paths_committers_and_their_relays_are_told_to_publish_directly():
    told = set()
    for spec in catalog.SERVICES:
        functions: list[tuple[str, _Kind]] = [(f"{spec.name}.{h.name}", {"handler": h}) for h in spec.handlers]
        functions += [(f"{spec.name}.api", {"api": True}), (f"{spec.name}.relay", {"relay": True})]
        for ref, kind in functions:
            environment = catalog.function_environment(spec, environment="e", table_name="t",
                                                       idempotency_table_name="i", bootstrap_servers="b",
                                                       kafka_auth="iam", direct_publish=True, **kind)
            off = catalog.function_environment(spec, environment="e", table_name="t", idempotency_table_name="i",
                                               bootstrap_servers="b", kafka_auth="iam", **kind)
            assert catalog.DIRECT_PUBLISH_ENV not in off
            if environment.get(catalog.DIRECT_PUBLISH_ENV) == "true":
                told.add(ref)
    assert told == catalog.DIRECT_PUBLISHERS | {"order.relay", "inventory.relay", "payment.relay"}


def test_a_direct_publisher_loads_neither_the_direct_path_nor_the_kafka_client_before_its_first_commit():
    code = ("import sys, os\n"
            "os.environ.update(SHOPSTREAM_DIRECT_PUBLISH='true', SHOPSTREAM_SERVICE='order', AWS_REGION='eu-west-1')\n"
            "import order.api, inventory.consumers\n"
            "print([m for m in ('shopstream.direct', 'confluent_kafka') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": "layers/shopstream/python:functions:.", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_each_delivery_counts_only_its_own_acknowledgements(monkeypatch):
    """A record a delivery gave up on, answered later, neither fails nor delays the next delivery."""
    import confluent_kafka

    from shopstream.config import Settings
    from shopstream.publisher import KafkaPublisher
    from shopstream.wire import to_record

    class FakeProducer:
        def __init__(self, _config):
            self.unanswered: list = []
            self.answer_next = False

        def produce(self, topic, key, value, headers, on_delivery):
            self.unanswered.append(on_delivery)

        def poll(self, timeout):
            if self.answer_next:  # the broker answers everything in flight: the old record failed, the new one not
                callbacks, self.unanswered = self.unanswered, []
                for i, callback in enumerate(callbacks):
                    callback("Broker: Request timed out" if i == 0 and len(callbacks) > 1 else None, None)
            return 0

    monkeypatch.setattr(confluent_kafka, "Producer", FakeProducer)
    publisher = KafkaPublisher(Settings())
    late, next_one = to_record(product_created("p-1")), to_record(product_created("p-2"))
    with pytest.raises(PublishError) as given_up:
        publisher.deliver([late], timeout=0.01)
    assert set(given_up.value.failed) == {late.event_id}
    assert isinstance(publisher._producer, FakeProducer)
    publisher._producer.answer_next = True
    publisher.deliver([next_one], timeout=1.0)  # the late failure is not this call's


def test_the_commits_trace_context_travels_on_the_direct_path_and_on_the_fallback(aws, catalog_table, clock):
    from local.traces import SpanStore
    from shopstream import tracing

    store = SpanStore()
    tracing.configure(store.ingest, sample_rate=1.0)
    try:
        sent, kept = product_created("p-1"), product_created("p-2")
        broker = Broker(refuse={kept.event_id})
        set_publisher(broker)
        request = tracing.start("POST /products", kind="server", parent=None)
        with tracing.activate(request):
            _commit(sent, kept)
        trace_id = tracing.trace_id_of(tracing.traceparent(request))
        assert trace_id is not None
        clock[0][0] += direct.GRACE_SECONDS
        relay_out = InMemoryPublisher()
        OutboxRelay(relay_out)(stream_event(aws["dynamodb"], catalog_table), LocalLambdaContext())
        [direct_record], [fallback_record] = broker.records, relay_out.records
        assert (direct_record.event_id, fallback_record.event_id) == (sent.event_id, kept.event_id)
        for record in (direct_record, fallback_record):  # each a PRODUCER span's child, in the request's trace
            context = dict(record.headers)[tracing.TRACEPARENT].decode()
            assert tracing.trace_id_of(context) == trace_id
        tracing.flush()
        producers = [s for s in store.trace(trace_id) if s["name"] == "publish catalog-events"]
        assert {s["attributes"].get("shopstream.publish") for s in producers} == {"direct", None}
    finally:
        tracing.reset()


def test_a_relay_redrive_republishes_what_no_function_published_and_counts_no_delete_as_an_event(aws, catalog_table,
                                                                                                clock):
    from local.ops import Letter, _relay_records
    from local.relay import failure_record

    published, refused = product_created("p-1"), product_created("p-2")
    set_publisher(Broker(refuse={refused.event_id}))
    _commit(published)
    _commit(refused)
    records = stream_event(aws["dynamodb"], catalog_table)["Records"]  # INSERT, REMOVE, INSERT
    record = failure_record("catalog", "arn:stream", "shard-1", records, attempts=3)
    events, missing = _relay_records(Letter(message={"MessageId": "m"}, body={}, record=record, stored=[]))
    assert [e.event_id for e in events] == [refused.event_id] and missing is None
