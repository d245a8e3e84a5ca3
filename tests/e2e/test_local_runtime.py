"""``make local`` end to end: the saga over HTTP on the real broker, poison and duplicates on a topic."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local import naming
from local.child import local_process
from tests.support import Who, present

ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}
ADMIN: Who = {"user": "ops", "admin": True}
pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    with local_process(tmp_path_factory.mktemp("local"), healthy_within=120) as local:
        yield local


def _aws(ports, service: str):
    import boto3

    any_service: Callable[..., Any] = boto3.client  # named at run time: the stubs type each literal name
    return any_service(service, endpoint_url=f"http://127.0.0.1:{ports['aws']}", region_name="eu-west-1",
                       aws_access_key_id="local", aws_secret_access_key="local")


def _sqs(ports):
    return _aws(ports, "sqs")


def _settled(client, order_id, user):
    order, outcome = client.await_order(order_id, user, "CONFIRMED", "CANCELLED", timeout=90)
    assert outcome == "reached", order
    return order


def _order(client, user, product_id, quantity=1, method="pm_card_visa", with_correlation=False):
    body = {"items": [{"productId": product_id, "quantity": quantity}], "paymentMethod": method,
            "shippingAddress": ADDRESS}
    status, answer, headers = client.wait_until(
        lambda: (r := client.call("POST", "/orders", user=user, body=body)) and r[0] != 422 and r, timeout=60)
    assert status == 202, answer
    assert headers["X-Correlation-Id"] == answer["correlationId"]
    return (answer["orderId"], answer["correlationId"]) if with_correlation else answer["orderId"]


def _raw(ports, request: bytes) -> tuple[int, bytes]:
    """One request written byte for byte (what urllib will not send); the status and the body."""
    import socket

    with socket.create_connection(("127.0.0.1", ports["api"]), timeout=10) as connection:
        connection.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += connection.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), b"0"))
        while len(body) < length and not request.startswith(b"HEAD "):
            body += connection.recv(65536)
        return int(head.split(b" ")[1]), body


def test_the_gateway_answers_every_request_with_a_4xx_not_a_dropped_connection(runtime):
    process, client, ports = runtime.process, runtime.client, runtime.ports
    token = client.token("edge-1").encode()
    for method in (b"FOO", b"OPTIONS", b"DELETE", b"HEAD"):
        status, _ = _raw(ports, method + b" /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert status == 404, method  # no route has it: API Gateway's answer, not 501
    body = b'{"email": "\xff\xfe@x.ie", "name": "E"}'
    status, answer = _raw(ports, b"POST /users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                          b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
                          b"\r\n\r\n" + body)
    assert status == 400 and b"UTF-8" in answer
    status, answer = _raw(ports, b"POST /users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                          b"\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi")
    assert status == 415
    status, _ = _raw(ports, b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
    assert status == 400
    long_id = "x" * 300
    assert client.call("GET", f"/orders/{long_id}", user="edge-1")[0] == 422
    status, _, headers = client.call("GET", "/users/edge-1", user="edge-1", headers={"X-Correlation-Id": "a b"})
    assert status == 404 and "X-Correlation-Id-Replaced" in headers
    assert process.poll() is None and client.healthy()


def test_a_cancel_that_reaches_the_topic_before_its_order_takes_no_stock(runtime):
    """Black box, as the issue reproduced it: raw records on order-events, OrderCancelled first."""
    from confluent_kafka import Producer

    from shopstream.envelope import event_from_command
    from shopstream.wire import to_record

    client, ports = runtime.client, runtime.ports
    status, product, _ = client.call("POST", "/products", **ADMIN,
                                     body={"sku": "E2E-R", "name": "r", "price": {"amount": 300, "currency": "EUR"}})
    pid = product["productId"]
    client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **ADMIN)[0] == 200)
    assert client.call("POST", f"/inventory/{pid}/adjustments", **ADMIN, body={"delta": 5, "reason": "e2e"})[0] == 200
    order_id = f"o_reordered{uuid.uuid4().hex[:8]}"
    line = {"productId": pid, "quantity": 2}
    cancelled = event_from_command(event_type="OrderCancelled", service="order", correlation_id="e2e-reorder",
                                   data={"orderId": order_id, "userId": "e2e-r", "reason": "customer_request",
                                         "previousStatus": "PENDING", "items": [line]})
    created = event_from_command(event_type="OrderCreated", service="order", correlation_id="e2e-reorder", data={
        "orderId": order_id, "userId": "e2e-r", "items": [{**line, "unitPrice": {"amount": 300, "currency": "EUR"}}],
        "total": {"amount": 600, "currency": "EUR"}, "paymentMethod": "pm_card_visa", "shippingAddress": ADDRESS})
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{ports['kafka']}"})
    for envelope in (cancelled, created):
        record = to_record(envelope)
        producer.produce(record.topic, key=record.key.encode(), value=record.value, headers=list(record.headers))
    producer.flush(10)
    dynamodb = _aws(ports, "dynamodb")

    def status_of(service: str, pk: str, sk: str) -> str | None:
        item = dynamodb.get_item(TableName=naming.table(service), Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        return item["status"]["S"] if item else None

    client.wait_until(lambda: status_of("inventory", f"RESERVATION#{order_id}", "RESERVATION") == "CANCELLED"
                      and status_of("payment", f"PAYMENT#pay_{order_id}", "PAYMENT") == "CANCELLED", timeout=60)
    # The late OrderCreated reached payment too (its amount merged into the tombstone, no charge);
    # inventory's mapping had it in the same batch or the next, right behind the cancel.
    client.wait_until(lambda: "amount" in dynamodb.get_item(TableName=naming.table("payment"), Key={
        "pk": {"S": f"PAYMENT#pay_{order_id}"}, "sk": {"S": "PAYMENT"}}).get("Item", {}), timeout=60)
    time.sleep(2)
    level = client.call("GET", f"/inventory/{pid}", **ADMIN)[1]
    assert (level["available"], level["reserved"]) == (5, 0)  # the late create took nothing
    assert status_of("inventory", f"RESERVATION#{order_id}", "RESERVATION") == "CANCELLED"
    assert client.call("GET", f"/payments/pay_{order_id}", **ADMIN)[1]["status"] == "CANCELLED"  # never authorised
    assert "Item" not in dynamodb.get_item(TableName=naming.table("payment"), Key={
        "pk": {"S": f"PROVIDER#auth_pay_{order_id}"}, "sk": {"S": "LEDGER"}})


def _records(bootstrap: str, topics: list[str], until) -> list:
    """Every record of ``topics`` from the start (a fresh consumer group), read until ``until(values)`` holds."""
    from confluent_kafka import Consumer

    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-{uuid.uuid4()}",
                       "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    reader.subscribe(topics)
    seen: list = []
    deadline = time.monotonic() + 60
    try:
        while not until([json.loads(m.value()) for m in seen if m.value()[:1] == b"{"]):
            assert time.monotonic() < deadline, "the records did not arrive"
            seen += [m for m in reader.consume(100, 1.0) if m.error() is None]
    finally:
        reader.close()
    return seen


def test_an_erased_customer_is_unreadable_on_the_broker_and_in_the_archive(runtime, monkeypatch):
    """The erasure on the real broker: what was published of the customer is still there, byte for byte,
    and readable before the erasure; after it, nothing of them can be read, by a reader with full access."""
    from shopstream import aws
    from shopstream.config import override_settings
    from tests.support import readable_traces

    client, ports = runtime.client, runtime.ports
    user = f"e2e-erase-{uuid.uuid4().hex[:6]}"
    email, name = f"{user}@forgettable.example", "Forgettable Person"
    address = {"line1": "7 Forgotten Lane", "city": "Oblivion", "postalCode": "E2E 0RS", "country": "IE"}
    needles = (email, name, "Forgotten Lane", "Oblivion", "E2E 0RS")
    assert client.call("POST", "/users", user=user, body={"email": email, "name": name})[0] == 201
    status, product, _ = client.call("POST", "/products", **ADMIN,
                                     body={"sku": "E2E-X", "name": "x", "price": {"amount": 100, "currency": "EUR"}})
    pid = product["productId"]
    client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **ADMIN)[0] == 200)
    assert client.call("POST", f"/inventory/{pid}/adjustments", **ADMIN, body={"delta": 3, "reason": "e2e"})[0] == 200
    status, placed, _ = client.wait_until(lambda: (r := client.call("POST", "/orders", user=user, body={
        "items": [{"productId": pid, "quantity": 1}], "paymentMethod": "pm_card_visa", "shippingAddress": address}))
        and r[0] != 422 and r, timeout=60)
    assert status == 202, placed
    order_id = placed["orderId"]
    shown = _settled(client, order_id, user)["shippingAddress"]
    assert {k: v for k, v in shown.items() if v is not None} == address  # opened for its customer

    # A reader with everything: the runtime's moto (key store, KMS, archive) and the broker.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{ports['aws']}")
    aws.reset_clients()
    reader = naming.function_settings("user")
    bootstrap = f"127.0.0.1:{ports['kafka']}"

    def mine(values: list[dict]) -> list[dict]:
        return [v for v in values if (v.get("data") or {}).get("userId") == user]

    before = _records(bootstrap, ["user-events", "order-events"], lambda vs: {
        "UserRegistered", "OrderCreated"} <= {v["eventType"] for v in mine(vs)})
    with override_settings(reader):
        assert readable_traces({"broker": [m.value() for m in before]}, needles, open_sealed=False) == []
        assert readable_traces({"broker": [m.value() for m in before]}, needles)  # sealed, and readable

    # read once more before the erasure: the gateway keeps this answer (local/read_cache.py) until a write changes
    # something it read; the key store's is one, and a table other than the order service's
    assert client.call("GET", f"/orders/{order_id}", user=user)[1]["shippingAddress"] == shown
    assert client.call("POST", f"/users/{user}/erasure", user=user)[0] == 202
    assert client.call("GET", f"/orders/{order_id}", user=user)[1]["shippingAddress"] is None
    after = _records(bootstrap, ["user-events", "order-events", "shipping-events", "notification-events",
                                 "audit-events"], lambda vs: "UserErased" in {v["eventType"] for v in mine(vs)})
    assert {(m.topic(), m.partition(), m.offset()): m.value() for m in before} == {
        (m.topic(), m.partition(), m.offset()): m.value() for m in after
        if (m.topic(), m.partition(), m.offset()) in {(b.topic(), b.partition(), b.offset()) for b in before}}
    [erased] = {v["eventId"] for v in mine([json.loads(m.value()) for m in after if m.value()[:1] == b"{"])
                if v["eventType"] == "UserErased"}
    s3 = aws.client("s3")

    def archive() -> dict[str, bytes]:  # every object (JSON Lines: one per batch, partition and day)
        return {o["Key"]: s3.get_object(Bucket=naming.AUDIT_ARCHIVE_BUCKET, Key=o["Key"])["Body"].read()
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=naming.AUDIT_ARCHIVE_BUCKET)
                for o in page.get("Contents", [])}

    archived = client.wait_until(lambda: (objects := archive()) and any(
        erased.encode() in body for body in objects.values()) and objects, timeout=60)  # the erasure archived too
    assert any(user.encode() in body for body in archived.values())
    with override_settings(reader):
        found = readable_traces({"broker": [m.value() for m in after], "archive": list(archived.values())}, needles)
    assert found == []


def test_a_long_poll_answers_as_the_order_settles_and_holds_up_no_other_request(runtime):
    """Two long-polls that can only time out wait while an order is placed and a third long-poll waits for its
    outcome: it settles and is answered while both are still waiting (the local gateway waits, not the API
    function: every API request runs under one lock here). The two then answer their timeout as documented:
    200, the order as it is, X-Wait-Outcome: timeout. A stranger is refused at once; a wrong status is a 422."""
    import threading

    from shopstream import long_poll

    client, user = runtime.client, "wait-1"
    assert client.call("POST", "/users", user=user, body={"email": "wait@x.ie", "name": "W"})[0] == 201
    status, product, _ = client.call("POST", "/products", **ADMIN,
                                     body={"sku": "WAIT", "name": "wait", "price": {"amount": 300, "currency": "EUR"}})
    assert status == 201
    pid = product["productId"]
    client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **ADMIN)[0] == 200)
    assert client.call("POST", f"/inventory/{pid}/adjustments", **ADMIN, body={"delta": 10, "reason": "e2e"})[0] == 200
    confirmed = [_order(client, user, pid) for _ in range(2)]
    assert [_settled(client, order_id, user)["status"] for order_id in confirmed] == ["CONFIRMED"] * 2

    waits = 20  # nobody dispatches these: each wait for DELIVERED can only time out
    answers: dict[str, tuple[int, str, str | None, float]] = {}

    def wait_for_delivery(order_id: str) -> None:
        started = time.monotonic()
        got, body, headers = client.call("GET", f"/orders/{order_id}?waitFor=DELIVERED&timeoutSeconds={waits}",
                                         user=user)
        answers[order_id] = (got, body["status"], headers.get(long_poll.OUTCOME_HEADER), time.monotonic() - started)

    waiting = [threading.Thread(target=wait_for_delivery, args=(order_id,)) for order_id in confirmed]
    for thread in waiting:
        thread.start()
    placed = _order(client, user, pid)
    got, body, headers = client.call("GET", f"/orders/{placed}?waitFor=CONFIRMED,CANCELLED&timeoutSeconds=25",
                                     user=user)
    assert (got, body["status"], headers.get(long_poll.OUTCOME_HEADER)) == (200, "CONFIRMED", "reached")
    assert all(thread.is_alive() for thread in waiting), answers  # answered while both still waited
    for thread in waiting:
        thread.join(60)
    for order_id in confirmed:
        got, status, outcome, took = answers[order_id]
        assert (got, status, outcome) == (200, "CONFIRMED", "timeout")
        assert took >= waits  # not before the time asked for

    started = time.monotonic()
    assert client.call("GET", f"/orders/{placed}?waitFor=DELIVERED&timeoutSeconds=25", user="wait-2")[0] == 404
    assert time.monotonic() - started < 20  # refused at the first read, not after a wait
    got, body, _ = client.call("GET", f"/orders/{placed}?waitFor=PENDING", user=user)
    assert got == 422 and [e["field"] for e in body["errors"]] == ["query.waitFor.0"]
    got, body, _ = client.call("GET", f"/orders/{placed}?waitFor=SHIPPED&timeoutSeconds=30", user=user)
    assert got == 422 and [e["field"] for e in body["errors"]] == ["query.timeoutSeconds"]
    # the parameter repeated is the list, as API Gateway joins it
    got, body, headers = client.call("GET", f"/orders/{placed}?waitFor=SHIPPED&waitFor=CONFIRMED", user=user)
    assert (got, headers.get(long_poll.OUTCOME_HEADER)) == (200, "reached")


def test_saga_poison_and_duplicates_through_the_local_runtime(runtime):
    from confluent_kafka import Consumer, Producer

    process, client, ports = runtime.process, runtime.client, runtime.ports
    assert client.call("GET", "/orders/x")[0] == 401  # no token
    assert client.call("POST", "/users", user="e2e-1", body={"email": "e2e@x.ie", "name": "E"})[0] == 201
    status, product, _ = client.call("POST", "/products", **ADMIN,
                                     body={"sku": "E2E", "name": "e2e", "price": {"amount": 700, "currency": "EUR"}})
    assert status == 201
    pid = product["productId"]
    client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **ADMIN)[0] == 200)
    assert client.call("POST", f"/inventory/{pid}/adjustments", **ADMIN, body={"delta": 10, "reason": "e2e"})[0] == 200

    happy, happy_correlation = _order(client, "e2e-1", pid, with_correlation=True)
    declined = _order(client, "e2e-1", pid, method="pm_card_chargeDeclined")
    cancelled = _order(client, "e2e-1", pid)
    assert client.call("POST", f"/orders/{cancelled}/cancel", user="e2e-1")[0] == 202
    assert _settled(client, happy, "e2e-1")["status"] == "CONFIRMED"
    assert _settled(client, declined, "e2e-1")["cancellationReason"] == "payment_declined"
    assert _settled(client, cancelled, "e2e-1")["cancellationReason"] == "customer_request"
    client.wait_until(lambda: client.call("GET", f"/orders/{happy}/shipment", user="e2e-1")[0] == 200)
    assert client.call("POST", f"/shipments/shp_{happy}/dispatch", **ADMIN)[0] == 200
    assert client.await_order(happy, "e2e-1", "SHIPPED")[0]["status"] == "SHIPPED"
    assert client.call("POST", f"/orders/{happy}/cancel", user="e2e-1")[0] == 409
    assert client.call("POST", f"/shipments/shp_{happy}/deliver", **ADMIN)[0] == 200
    assert client.await_order(happy, "e2e-1", "DELIVERED")[0]["status"] == "DELIVERED"
    level = client.wait_until(lambda: (s := client.call("GET", f"/inventory/{pid}", **ADMIN)[1])
                              and s["reserved"] == 0 and s)
    assert level["available"] == 9

    # A raw poison record and a duplicate of a processed event, straight into order-events.
    bootstrap = f"127.0.0.1:{ports['kafka']}"
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-{uuid.uuid4()}",
                       "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    reader.subscribe(["order-events"])
    original = None
    deadline = time.monotonic() + 60
    while original is None and time.monotonic() < deadline:
        for message in reader.consume(100, 1.0):
            if message.error() is None and json.loads(present(message.value()))["data"].get("orderId") == happy \
                    and json.loads(present(message.value()))["eventType"] == "OrderCreated":
                original = message
    reader.close()
    assert original is not None
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce("order-events", key=original.key(), value=b"{not json at all")
    producer.produce("order-events", key=original.key(), value=original.value(), headers=original.headers())
    producer.flush(10)
    # Later records on the same partition (same key) are still processed.
    later = _order(client, "e2e-1", pid)
    assert _settled(client, later, "e2e-1")["status"] == "CONFIRMED"

    sqs = _sqs(ports)
    url = sqs.get_queue_url(QueueName=naming.dlq("inventory", "order-reservations"))["QueueUrl"]
    messages = client.wait_until(lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"))
    poison = json.loads(messages[0]["Body"])
    assert (poison["reason"], poison["topic"]) == ("not_json", "order-events")
    level = client.wait_until(lambda: (s := client.call("GET", f"/inventory/{pid}", **ADMIN)[1])
                              and s["reserved"] == 0 and s)
    assert level["available"] == 8  # the duplicate reserved nothing: only `later` took a unit
    client.wait_until(lambda: client.call("GET", f"/payments/pay_{happy}", **ADMIN)[1]["status"] == "CAPTURED")

    # The operations CLI against the running stack.
    def ops(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "tools.ops", *args], env=runtime.env, capture_output=True,
                                text=True, timeout=120)
        return result.stdout

    assert "poison  not_json" in ops("dlq", "list", "--handler", "audit.trail-order")
    assert "1 redriven, 0 kept" in ops("dlq", "redrive", "--handler", "audit.trail-order")
    # Still poison: the handler took it and dead-lettered it again, as one fresh message.
    assert "1 message(s)" in ops("dlq", "list", "--handler", "audit.trail-order")
    # Every user-events record so far (this test's customer, and the erased one's registration and erasure:
    # a replay of an erased customer's registration stores nothing, their replica stays a tombstone).
    replayed = re.search(r"replayed (\d+) record\(s\) of user-events .*; 0 reported failed",
                         ops("replay", "--handler", "order.user-replica"))
    assert replayed and int(replayed[1]) >= 1, replayed
    diagram = Path(os.environ.get("TMPDIR", "/tmp")) / f"{happy}.mmd"
    trace = ops("trace", happy_correlation, "--mermaid", str(diagram))
    assert "OrderCreated" in trace and "InventoryReserved" in trace and "PaymentProcessed" in trace
    # confirmed by whichever of the reservation and the authorisation came last (docs/decisions.md, 2026-12-05)
    assert re.search(r"(payment|inventory)->>order: OrderConfirmed", diagram.read_text())

    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)  # impatient: a second signal while stopping must not abort the cleanup
    assert process.wait(timeout=60) == 0
    for port in ports.values():
        with pytest.raises(OSError):
            import socket

            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()

