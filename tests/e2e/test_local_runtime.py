"""``make local`` end to end: the saga over HTTP on the real broker, poison and duplicates on a topic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from local import naming
from local.client import ApiClient
from local.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}
ADMIN = {"user": "ops", "admin": True}
pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("local")
    ports = {"kafka": free_port(), "aws": free_port(), "api": free_port()}
    env = {**os.environ, "SHOPSTREAM_LOCAL_KAFKA_PORT": str(ports["kafka"]),
           "SHOPSTREAM_LOCAL_AWS_PORT": str(ports["aws"]), "SHOPSTREAM_LOCAL_API_PORT": str(ports["api"]),
           "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}"}
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "AWS_ENDPOINT_URL", "POWERTOOLS_METRICS_DISABLED"):
        env.pop(name, None)
    log = (workdir / "local.out").open("w")
    process = subprocess.Popen([sys.executable, "-m", "local"], cwd=workdir, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    client = ApiClient(f"http://127.0.0.1:{ports['api']}", secret_path=workdir / ".local" / "jwt-secret")
    try:
        client.wait_until(lambda: process.poll() is not None or client.healthy(), timeout=120, interval=0.5)
        assert process.poll() is None, (workdir / "local.out").read_text()[-3000:]
        yield process, client, ports
    finally:
        if process.poll() is None:
            process.kill()


def _sqs(ports):
    import boto3

    return boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{ports['aws']}", region_name="eu-west-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def _settled(client, order_id, user):
    return client.wait_until(lambda: (o := client.call("GET", f"/orders/{order_id}", user=user)[1])
                             and o["status"] != "PENDING" and o, timeout=90)


def _order(client, user, product_id, quantity=1, method="pm_card_visa", with_correlation=False):
    body = {"items": [{"productId": product_id, "quantity": quantity}], "paymentMethod": method,
            "shippingAddress": ADDRESS}
    status, answer, headers = client.wait_until(
        lambda: (r := client.call("POST", "/orders", user=user, body=body)) and r[0] != 422 and r, timeout=60)
    assert status == 202, answer
    assert headers["X-Correlation-Id"] == answer["correlationId"]
    return (answer["orderId"], answer["correlationId"]) if with_correlation else answer["orderId"]


def test_saga_poison_and_duplicates_through_the_local_runtime(runtime):
    from confluent_kafka import Consumer, Producer

    process, client, ports = runtime
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
    client.wait_until(lambda: client.call("GET", f"/orders/{happy}", user="e2e-1")[1]["status"] == "SHIPPED")
    assert client.call("POST", f"/orders/{happy}/cancel", user="e2e-1")[0] == 409
    assert client.call("POST", f"/shipments/shp_{happy}/deliver", **ADMIN)[0] == 200
    client.wait_until(lambda: client.call("GET", f"/orders/{happy}", user="e2e-1")[1]["status"] == "DELIVERED")
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
            if message.error() is None and json.loads(message.value())["data"].get("orderId") == happy \
                    and json.loads(message.value())["eventType"] == "OrderCreated":
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
    assert client.call("GET", f"/payments/pay_{happy}", **ADMIN)[1]["status"] == "CAPTURED"

    # The operations CLI against the running stack.
    def ops(*args: str) -> str:
        env = {**os.environ, "SHOPSTREAM_LOCAL_KAFKA_PORT": str(ports["kafka"]),
               "SHOPSTREAM_LOCAL_AWS_PORT": str(ports["aws"]),
               "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}"}
        for name in ("KAFKA_BOOTSTRAP_SERVERS", "AWS_ENDPOINT_URL"):
            env.pop(name, None)
        result = subprocess.run([sys.executable, "-m", "tools.ops", *args], env=env, capture_output=True,
                                text=True, timeout=120)
        return result.stdout

    assert "poison  not_json" in ops("dlq", "list", "--handler", "audit.trail-order")
    assert "1 redriven, 0 kept" in ops("dlq", "redrive", "--handler", "audit.trail-order")
    # Still poison: the handler took it and dead-lettered it again, as one fresh message.
    assert "1 message(s)" in ops("dlq", "list", "--handler", "audit.trail-order")
    assert "replayed 1 record(s) of user-events" in ops("replay", "--handler", "order.user-replica")
    diagram = Path(os.environ.get("TMPDIR", "/tmp")) / f"{happy}.mmd"
    trace = ops("trace", happy_correlation, "--mermaid", str(diagram))
    assert "OrderCreated" in trace and "InventoryReserved" in trace and "PaymentProcessed" in trace
    assert "payment->>order: OrderConfirmed" in diagram.read_text()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    for port in ports.values():
        with pytest.raises(OSError):
            import socket

            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
