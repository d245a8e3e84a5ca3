from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest
from moto import mock_aws

from local import naming, provision
from local.bus import InProcessBus
from local.shop import Shop, scan


def dlq(bus: InProcessBus, service: str, handler: str) -> list[dict]:
    import boto3

    sqs, url, out = boto3.client("sqs"), bus.queue_urls[naming.dlq(service, handler)], []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for m in messages:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def ledger(order_id: str) -> dict[str, int]:
    """The provider's ledger for an order's payment: what each call (auth, capture, void, refund) moved."""
    suffix = f"_pay_{order_id}"
    return {i["pk"].removeprefix("PROVIDER#").removesuffix(suffix): int(i["amount"])
            for i in scan("payment") if i["sk"] == "LEDGER" and i["pk"].endswith(suffix)}


def stocks() -> dict[str, dict[str, int]]:
    """Each product's stock levels, summed over its counters (inventory's SHARD# items)."""
    found: dict[str, Counter] = {}
    for counter in (i for i in scan("inventory") if i["sk"] == "SHARD"):
        found.setdefault(counter["productId"], Counter()).update(
            {level: int(counter[level]) for level in ("available", "reserved", "sold", "received")})
    return {product: dict(levels) for product, levels in found.items()}


def check_invariants(bus: InProcessBus) -> dict:
    """What must hold after the system settles, whatever the scenario."""
    orders = {i["order_id"]: i for i in scan("order") if i["sk"] == "STATE"}
    for order in orders.values():
        assert order["status"] != "PENDING", f"{order['order_id']} is stuck PENDING"
        if order["status"] == "CANCELLED":
            assert order.get("cancellation_reason"), order["order_id"]
    # stock: everything received is available, reserved or sold; nothing stays reserved once settled
    for stock in (i for i in scan("inventory") if i["sk"] == "SHARD"):  # each counter on its own
        assert stock["received"] == stock["available"] + stock["reserved"] + stock["sold"], stock
        assert stock["available"] >= 0 and stock["reserved"] == 0, stock
    reservations = Counter(i["orderId"] for i in scan("inventory") if i["sk"] == "RESERVATION")
    assert all(n == 1 for n in reservations.values())
    # money: captured minus refunded equals what confirmed, not-cancelled orders are worth
    payments = [i for i in scan("payment") if i["sk"] == "PAYMENT"]
    assert len(payments) == len({p["orderId"] for p in payments}), "more than one payment for an order"
    kept = sum(p["amount"]["amount"] for p in payments if p["status"] == "CAPTURED")
    owed = sum(o["total"]["amount"] for o in orders.values() if o["status"] in ("CONFIRMED", "SHIPPED", "DELIVERED"))
    assert kept == owed, (kept, owed)
    # every authorisation the provider granted was captured or voided: none holds a customer's money
    held = [i for i in scan("payment") if i["sk"] == "AUTHORISATION" and i["status"] == "AUTHORISED"]
    assert held == [], held
    # the event-sourced state equals its projection
    bus_order_module = __import__("order.store", fromlist=["rebuild"])
    from shopstream.config import override_settings

    with override_settings(bus.settings_for("order")):
        for order_id, projection in orders.items():
            rebuilt = bus_order_module.rebuild(order_id)
            assert (rebuilt.status, rebuilt.version) == (projection["status"], projection["version"])
    statuses = defaultdict(list)
    for order in orders.values():
        statuses[order["status"]].append(order.get("cancellation_reason"))
    return dict(statuses)


@pytest.fixture
def bus():
    import boto3

    with mock_aws():
        yield InProcessBus(queue_urls=provision.create_aws_resources(boto3.client, "eu-west-1"))


@pytest.fixture
def shop(bus):
    return Shop(bus)
