"""Outbox: state + events in one transaction; the relay publishes from the table's stream."""

from __future__ import annotations

import json
from datetime import UTC

import pytest

from local.context import LocalLambdaContext
from local.samples import product_created
from shopstream.envelope import event_from_command
from shopstream.publisher import InMemoryPublisher, PublishError
from shopstream.relay import OutboxRelay
from shopstream.transaction import ConditionFailed, UnitOfWork, Unstorable


def stream_event(dynamodb, table_name: str) -> dict:
    """Everything on the table's stream so far, shaped as Lambda delivers it."""
    import boto3

    streams = boto3.client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for record in streams.get_records(ShardIterator=iterator)["Records"]:
            records.append({**record, "eventSource": "aws:dynamodb", "eventSourceARN": arn})
    return {"Records": records}


@pytest.fixture
def catalog_table(service_env):
    return service_env("catalog")["SHOPSTREAM_TABLE_NAME"]


def _put_product(uow: UnitOfWork, product_id: str) -> None:
    uow.put({"pk": f"PRODUCT#{product_id}", "sk": "PRODUCT", "name": "Mug", "version": 1},
            condition="attribute_not_exists(pk)")


def test_state_and_events_commit_in_one_transaction(aws, catalog_table):
    created = product_created("p-1")
    uow = UnitOfWork()
    _put_product(uow, "p-1")
    uow.emit(created)
    uow.commit()
    items = aws["dynamodb"].scan(TableName=catalog_table)["Items"]
    keys = sorted(i["pk"]["S"] for i in items)
    assert keys[1] == "PRODUCT#p-1" and keys[0].startswith(f"OUTBOX#{created.timestamp:%Y%m%d%H}#")
    outbox = next(i for i in items if i["pk"]["S"].startswith("OUTBOX#"))
    assert outbox["sk"]["S"].endswith(f"#{created.event_id}")
    assert outbox["topic"]["S"] == "catalog-events" and outbox["key"]["S"] == "p-1"
    assert json.loads(outbox["payload"]["S"])["eventId"] == created.event_id
    assert int(outbox["ttl"]["N"]) > 0


def test_a_failed_condition_writes_neither_state_nor_events(aws, catalog_table):
    first = UnitOfWork()
    _put_product(first, "p-1")
    first.commit()
    second = UnitOfWork()
    second.emit(product_created("p-1"))
    _put_product(second, "p-1")
    with pytest.raises(ConditionFailed) as failed:
        second.commit()
    assert failed.value.failed_indexes() == [1]
    assert aws["dynamodb"].scan(TableName=catalog_table)["Count"] == 1


def test_an_event_without_its_key_is_refused_before_anything_is_written(catalog_table):
    bad = event_from_command(event_type="ProductCreated", data={"sku": "x"}, service="catalog", correlation_id="c")
    with pytest.raises(ValueError, match="productId"):
        UnitOfWork().emit(bad)


def test_the_relay_publishes_outbox_items_from_the_stream_and_ignores_the_rest(aws, catalog_table):
    events = [product_created(f"p-{i}", correlation_id=f"corr-{i}") for i in range(3)]
    for i, event in enumerate(events):
        uow = UnitOfWork()
        _put_product(uow, f"p-{i}")
        uow.emit(event)
        uow.commit()
    # A later state change (MODIFY) and a non-outbox insert must not publish anything.
    aws["dynamodb"].update_item(TableName=catalog_table, Key={"pk": {"S": "PRODUCT#p-0"}, "sk": {"S": "PRODUCT"}},
                                UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
                                ExpressionAttributeValues={":n": {"S": "Cup"}})
    publisher = InMemoryPublisher()
    response = OutboxRelay(publisher)(stream_event(aws["dynamodb"], catalog_table), LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    assert publisher.flushes == 1
    assert [r.event_id for r in publisher.records] == [e.event_id for e in events]
    first = publisher.records[0]
    assert (first.topic, first.key) == ("catalog-events", "p-0")
    assert dict(first.headers) == {"eventType": b"ProductCreated", "eventVersion": b"v1", "correlationId": b"corr-0"}
    assert json.loads(first.value) == json.loads(events[0].model_dump_json(by_alias=True))


class FlakyPublisher(InMemoryPublisher):
    def __init__(self, fail_event_id: str):
        super().__init__()
        self.fail_event_id = fail_event_id

    def flush(self) -> None:
        super().flush()
        raise PublishError({self.fail_event_id: "Broker: Not enough in-sync replicas"})


def test_an_undelivered_record_is_reported_by_its_stream_sequence_number(aws, catalog_table):
    events = [product_created(f"p-{i}") for i in range(3)]
    for event in events:
        uow = UnitOfWork()
        uow.emit(event)
        uow.commit()
    stream = stream_event(aws["dynamodb"], catalog_table)
    sequence_of = {json.loads(r["dynamodb"]["NewImage"]["payload"]["S"])["eventId"]: r["dynamodb"]["SequenceNumber"]
                   for r in stream["Records"]}
    response = OutboxRelay(FlakyPublisher(events[1].event_id))(stream, LocalLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence_of[events[1].event_id]}]}


def test_more_than_a_hundred_actions_is_refused(catalog_table):
    uow = UnitOfWork()
    for i in range(101):
        _put_product(uow, f"p-{i}")
    with pytest.raises(Unstorable, match="100"):
        uow.commit()


def _failure_record(first: str, last: str, size: int) -> dict:
    return {"requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0",
            "DDBStreamBatchInfo": {"shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "9",
                                   "approximateArrivalOfFirstRecord": first, "approximateArrivalOfLastRecord": last,
                                   "batchSize": size, "streamArn": "arn"}}


def test_a_batch_the_relay_gave_up_on_is_republished_from_the_table(aws, catalog_table):
    """A failure record with coordinates only (an SQS destination's): the events are read back from the outbox
    items, which outlive any such record (`make ops ARGS="dlq redrive --handler catalog.relay"`)."""
    from datetime import datetime

    from local import naming, ops
    from shopstream.publisher import set_publisher

    events = [product_created(f"p-{i}") for i in range(3)]
    for event in events:
        uow = UnitOfWork()
        uow.emit(event)
        uow.commit()
    now = datetime.now(UTC).isoformat()
    sqs = aws["sqs"]
    url = aws["queues"][naming.relay_dlq("catalog")]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(_failure_record(now, now, 3)))
    published = InMemoryPublisher()
    set_publisher(published)
    target = ops.Target("local", in_process=True)  # the local names, with this process's clients (moto)
    lines: list[str] = []
    assert ops.dlq_redrive(target, "catalog.relay", out=lines.append) == 0
    assert sorted(r.event_id for r in published.records) == sorted(e.event_id for e in events)
    assert {r.topic for r in published.records} == {"catalog-events"}
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None  # the message is done with
    assert "3 outbox event(s) published again" in lines[0]


def test_the_redrive_window_covers_the_batch_and_nothing_far_from_it(aws, catalog_table):
    from datetime import datetime, timedelta

    from shopstream.outbox import failure_window, outbox_items_between

    event = product_created("p-1")
    uow = UnitOfWork()
    uow.emit(event)
    uow.commit()
    now = datetime.now(UTC)
    start, end = failure_window(_failure_record(now.isoformat(), now.isoformat(), 1))
    assert [i["eventId"] for i in outbox_items_between(start, end)] == [event.event_id]
    later = now + timedelta(hours=2)
    start, end = failure_window(_failure_record(later.isoformat(), later.isoformat(), 1))
    assert outbox_items_between(start, end) == []


class FailingPublisher(InMemoryPublisher):
    def flush(self) -> None:
        failed = {r.event_id: "broker unreachable" for r in self.records}
        self.records.clear()
        raise PublishError(failed)


def test_the_local_stream_relay_retries_then_gives_the_batch_to_the_failure_queue(aws, catalog_table):
    """As Lambda's stream mapping does: the shard waits on a failing batch, and after the retries the
    batch (coordinates and records) goes to the relay's on-failure destination (then `dlq redrive --handler
    <service>.relay`)."""
    from local import naming
    from local.relay import StreamRelay
    from local.streams import StreamReader
    from shopstream import aws as clients
    from shopstream.config import get_settings

    uow = UnitOfWork()
    uow.emit(product_created("p-9"))
    uow.commit()
    arn = aws["dynamodb"].describe_table(TableName=catalog_table)["Table"]["LatestStreamArn"]
    given_up: list[dict] = []
    relay = StreamRelay("catalog", StreamReader(clients.client("dynamodbstreams"), arn), get_settings(),
                        retry_attempts=2, give_up=lambda record, shard: given_up.append(record))
    failing = OutboxRelay(FailingPublisher())
    assert relay.poll(failing) == (1, False)
    assert relay.poll(failing) == (1, False)
    assert given_up == []
    assert relay.poll(failing) == (1, True)  # third failure: given up, the shard moves on
    [record] = given_up
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
    from shopstream.failed_batches import stream_records

    [kept] = stream_records(record)  # the outbox item itself, not only its coordinates
    assert kept["dynamodb"]["NewImage"]["eventType"]["S"] == "ProductCreated"
    assert relay.poll(failing) == (0, True)
    assert naming.relay_dlq("catalog").endswith("-catalog-relay-dlq")
