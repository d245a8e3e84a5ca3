"""The operator's redrive (local/ops.py) against what the mappings keep of a batch they gave up on.

A mapping gives a batch up into its service's failed-batch bucket (the records themselves); S3 announces the
object to the dead-letter queue; the redrive feeds the records back, and deletes the message and the object
only once every record was handled. A message whose records cannot all be found is kept, and the command says
what is missing and exits non-zero. moto in process, the local runtime's own destination and relay code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from local import naming, provision
from local.destinations import failed_batch_destination
from local.mapping import on_failure_record
from local.samples import product_created
from shopstream import failed_batches, names
from shopstream.envelope import event_from_command
from shopstream.publisher import InMemoryPublisher, set_publisher
from shopstream.transaction import UnitOfWork
from shopstream.wire import msk_record, to_record


@pytest.fixture
def stored(aws):
    """The failed-batch buckets, announcing to the dead-letter queues (as `make local` provisions them)."""
    import boto3

    provision.create_failed_batch_buckets(boto3.client("s3"), aws["sqs"], aws["queues"], "eu-west-1")
    return aws


@pytest.fixture
def target(stored):
    from local.ops import Target

    return Target("local", in_process=True)


def _messages(aws, queue: str) -> list[dict]:
    url = aws["queues"][queue]
    got = aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def _objects(service: str) -> list[str]:
    import boto3

    listed = boto3.client("s3").list_objects_v2(Bucket=naming.failed_batches_bucket(service))
    return [o["Key"] for o in listed.get("Contents", [])]


def _product_records(*product_ids: str, offset: int = 0) -> list[dict]:
    out = []
    for n, product_id in enumerate(product_ids):
        record = to_record(product_created(product_id))
        out.append(msk_record(topic=record.topic, partition=0, offset=offset + n, key=record.key.encode(),
                              value=record.value, headers=list(record.headers)))
    return out


def _give_up(records: list[dict], *, service: str = "order", handler: str = "product-replica") -> None:
    """What the local mapping does once a batch's retries are spent."""
    give_up = failed_batch_destination(__import__("shopstream.aws", fromlist=["client"]).client, service, handler)
    give_up(on_failure_record(function=f"{service}-{handler}", records=records, condition="RetryAttemptsExhausted",
                              error="Unhandled", attempts=4), f"{records[0]['topic']}-{records[0]['partition']}")


def test_a_given_up_batch_is_kept_whole_in_s3_and_announced_to_the_handlers_queue(stored):
    _give_up(_product_records("p-1", "p-2"))
    [key] = _objects("order")
    assert key.startswith(failed_batches.mapping_prefix(naming.mapping_id("order", "product-replica")))
    [announcement] = _messages(stored, naming.dlq("order", "product-replica"))
    assert failed_batches.stored_objects(announcement) == [(naming.failed_batches_bucket("order"), key)]
    assert _messages(stored, naming.dlq("order", "user-replica")) == []  # routed by the mapping's prefix
    assert _messages(stored, naming.dlq("order", "product-replica"))  # S3's greeting was not left behind


def test_a_redrive_applies_the_stored_records_then_deletes_the_message_and_the_object(target, stored):
    from local import ops
    from order import store
    from shopstream.config import override_settings

    _give_up(_product_records("p-1", "p-2"))
    lines: list[str] = []
    assert ops.dlq_redrive(target, "order.product-replica", out=lines.append) == 0, lines
    with override_settings(naming.function_settings("order")):
        assert set(store.get_product_replicas(["p-1", "p-2"])) == {"p-1", "p-2"}
    assert _messages(stored, naming.dlq("order", "product-replica")) == [] and _objects("order") == []
    assert "1 redriven, 0 kept" in lines[-1]


def test_a_stored_batch_that_lost_records_is_kept_and_the_redrive_fails(target, stored):
    """The record names two records; the object holds one (truncated by hand): nothing is applied or deleted."""
    import boto3

    from local import ops

    _give_up(_product_records("p-1", "p-2"))
    [key] = _objects("order")
    s3 = boto3.client("s3")
    bucket = naming.failed_batches_bucket("order")
    record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    event = json.loads(record["payload"])
    event["records"] = {k: v[:1] for k, v in event["records"].items()}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({**record, "payload": json.dumps(event)}).encode())
    url = stored["queues"][naming.dlq("order", "product-replica")]  # the rewrite announced the object again
    for message in stored["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                 VisibilityTimeout=0)["Messages"][1:]:
        stored["sqs"].delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    lines: list[str] = []
    assert ops.dlq_redrive(target, "order.product-replica", out=lines.append) == 1
    assert "1 of the 2 records it names are not in it" in "\n".join(lines)
    assert len(_messages(stored, naming.dlq("order", "product-replica"))) == 1 and _objects("order") == [key]


def test_a_message_whose_stored_batch_is_gone_is_kept_and_says_so(target, stored):
    import boto3

    from local import ops

    _give_up(_product_records("p-1"))
    [key] = _objects("order")
    boto3.client("s3").delete_object(Bucket=naming.failed_batches_bucket("order"), Key=key)
    lines: list[str] = []
    assert ops.dlq_redrive(target, "order.product-replica", out=lines.append) == 1
    assert "is gone (expired or deleted)" in "\n".join(lines)
    assert len(_messages(stored, naming.dlq("order", "product-replica"))) == 1
    assert "MISSING: the stored batch" in "\n".join(_listed(target, "order.product-replica"))


def _listed(target, ref: str) -> list[str]:
    from local import ops

    lines: list[str] = []
    ops.dlq_list(target, ref, out=lines.append)
    return lines


def test_the_list_names_each_message_by_the_id_a_discard_takes(target, stored):
    """An operator reads the id off `dlq list` (docs/runbooks/dlq.md) and hands it to `dlq discard`."""
    from local import ops

    _give_up(_product_records("p-1"))
    [line, total] = _listed(target, "order.product-replica")
    assert total == "1 message(s)"
    message_id = line.split()[1]
    assert ops.dlq_discard(target, "order.product-replica", {message_id}, out=lambda _: None) == 0
    assert _messages(stored, naming.dlq("order", "product-replica")) == []


def test_a_discard_deletes_the_message_and_the_stored_batch(target, stored):
    from local import ops

    _give_up(_product_records("p-1"))
    [peeked] = ops.dlq_peek(target, "order.product-replica")
    assert peeked["records"] == 1 and "p-1" in peeked["value"]["text"]
    assert ops.dlq_discard(target, "order.product-replica", {peeked["messageId"]}, out=lambda _: None) == 0
    assert _messages(stored, naming.dlq("order", "product-replica")) == [] and _objects("order") == []


# --- the outbox relays ------------------------------------------------------------------------------------
@pytest.fixture
def catalog_relay(stored, service_env):
    """Three ProductCreated committed to the catalog table, and its relay failing to publish them until it
    gives the batch up (as the local runtime's relay does, into the failed-batch bucket)."""
    from local.relay import StreamRelay
    from local.streams import StreamReader
    from shopstream import aws as clients
    from shopstream.config import get_settings
    from shopstream.relay import OutboxRelay
    from tests.unit.test_outbox import FailingPublisher

    table = service_env("catalog")["SHOPSTREAM_TABLE_NAME"]
    events = [product_created(f"p-{i}") for i in range(3)]
    uow = UnitOfWork()
    uow.put({"pk": "PRODUCT#p-0", "sk": "PRODUCT", "version": 1})  # not an outbox item: the filter drops it
    for event in events:
        uow.emit(event)
    uow.commit()
    arn = stored["dynamodb"].describe_table(TableName=table)["Table"]["LatestStreamArn"]
    relay = StreamRelay("catalog", StreamReader(clients.client("dynamodbstreams"), arn), get_settings(),
                        retry_attempts=1, give_up=failed_batch_destination(clients.client, "catalog", names.RELAY))
    failing = OutboxRelay(FailingPublisher())
    assert relay.poll(failing)[1] is False
    assert relay.poll(failing)[1] is True  # given up
    return events, table


def test_a_relay_batch_is_redriven_from_the_stored_stream_records_even_after_the_outbox_expired(
        target, stored, catalog_relay):
    """The outbox items are gone (their TTL passed, or deleted): the stored batch still holds every event."""
    from local import ops

    events, table = catalog_relay
    for item in stored["dynamodb"].scan(TableName=table)["Items"]:
        stored["dynamodb"].delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    [announcement] = _messages(stored, naming.relay_dlq("catalog"))
    [(_, key)] = failed_batches.stored_objects(announcement)
    published = InMemoryPublisher()
    set_publisher(published)
    lines: list[str] = []
    assert ops.dlq_redrive(target, "catalog.relay", out=lines.append) == 0, lines
    assert sorted(r.event_id for r in published.records) == sorted(e.event_id for e in events)
    assert "3 outbox event(s) published again" in lines[0]
    assert _messages(stored, naming.relay_dlq("catalog")) == [] and _objects("catalog") == []


def test_a_relay_failure_that_names_more_events_than_the_outbox_still_holds_is_kept(target, stored, service_env):
    """A failure record with coordinates only (as an SQS destination received them) whose outbox items expired:
    before, the redrive published nothing, said so, exited 0 and deleted the message: refunds never made."""
    from local import ops

    service_env("catalog")
    uow = UnitOfWork()
    uow.emit(product_created("p-kept"))
    uow.commit()
    now = datetime.now(UTC).isoformat()
    url = stored["queues"][naming.relay_dlq("catalog")]
    stored["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps({
        "requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0",
        "DDBStreamBatchInfo": {"shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "9",
                               "approximateArrivalOfFirstRecord": now, "approximateArrivalOfLastRecord": now,
                               "batchSize": 3, "streamArn": "arn"}}))
    published = InMemoryPublisher()
    set_publisher(published)
    lines: list[str] = []
    assert ops.dlq_redrive(target, "catalog.relay", out=lines.append) == 1
    assert "2 of the 3 events it names were not found in the outbox" in "\n".join(lines)
    assert published.records == [] and len(_messages(stored, naming.relay_dlq("catalog"))) == 1


def test_poison_is_still_carried_whole_and_redriven_from_the_message(target, stored):
    from local import ops
    from shopstream.dlq import poison_message
    from shopstream.wire import IncomingRecord

    value = to_record(event_from_command(event_type="ProductCreated", data=product_created("p-9").data,
                                        service="catalog", correlation_id="c")).value
    record = IncomingRecord(topic="catalog-events", partition=0, offset=7, timestamp=None, key=b"p-9", value=value,
                            headers={}, raw={})
    stored["sqs"].send_message(QueueUrl=stored["queues"][naming.dlq("order", "product-replica")],
                               MessageBody=json.dumps(poison_message(record, handler="order.product-replica",
                                                                     reason="handler_refused", detail="fixed since")))
    lines: list[str] = []
    assert ops.dlq_redrive(target, "order.product-replica", out=lines.append) == 0, lines
    assert "1 redriven, 0 kept" in lines[-1]
