"""The order saga across all nine services, with moto and the real consumer runtime."""

from __future__ import annotations

import concurrent.futures
import json
from datetime import UTC

import pytest

from local.bus import InProcessBus
from local.context import LocalLambdaContext
from local.shop import ADMIN, Shop, scan
from shopstream.config import override_settings
from shopstream.wire import msk_event, msk_record
from tests.integration.conftest import check_invariants, dlq, ledger, stocks


@pytest.fixture
def stocked(shop):
    shop.register("u-1")
    mug = shop.product("MUG", 1250, stock=10)
    tea = shop.product("TEA", 499, stock=3)
    shop.bus.pump()
    return shop, mug, tea


def test_happy_path_to_delivered(stocked):
    shop, mug, tea = stocked
    order_id = shop.order("u-1", {mug: 2, tea: 1}, correlation_id="corr-happy")
    shop.bus.pump()
    confirmed = shop.get_order(order_id, user="u-1")
    assert confirmed["status"] == "CONFIRMED" and confirmed["total"] == {"amount": 2 * 1250 + 499, "currency": "EUR"}
    shop.ship(order_id)
    delivered = shop.get_order(order_id)
    assert delivered["status"] == "DELIVERED"
    assert check_invariants(shop.bus) == {"DELIVERED": [None]}
    # availability followed inventory: 10 - 2 mugs left
    status, product = shop.bus.call("catalog", "GET", f"/products/{mug}")
    assert product["availability"] == {"available": 8, "inStock": True}
    # the customer was told
    templates = sorted(n["template"] for n in scan("notification") if n["sk"] == "MESSAGE")
    assert templates == ["order-confirmed", "order-shipped", "shipment-delivered", "shipment-dispatched", "welcome"]
    # the audit trail shows the request's whole chain, every cause before its effects
    status, trail = shop.bus.call("audit", "GET", "/audit/corr-happy", user=ADMIN, admin=True)
    assert status == 200
    types = [e["eventType"] for e in trail["events"]]
    for expected in ("AuditRecorded", "OrderCreated", "InventoryReserved", "PaymentInitiated", "PaymentAuthorised",
                     "PaymentProcessed", "OrderConfirmed", "ShippingCreated", "NotificationSent"):
        assert expected in types, expected
    seen = set()
    for e in trail["events"]:
        assert e["causationId"] is None or e["causationId"] in seen, e["eventType"]
        seen.add(e["eventId"])
    assert shop.bus.call("audit", "GET", "/audit/corr-happy", user="u-1")[0] == 403


def test_out_of_stock_cancels_releases_nothing_and_voids_the_authorisation(stocked):
    shop, mug, tea = stocked
    order_id = shop.order("u-1", {tea: 4})
    shop.bus.pump()
    order = shop.get_order(order_id)
    assert (order["status"], order["cancellationReason"]) == ("CANCELLED", "out_of_stock")
    # authorised beside the reservation, released when the reservation failed: nothing was taken
    assert [p["status"] for p in scan("payment") if p["sk"] == "PAYMENT"] == ["VOIDED"]
    assert ledger(order_id) == {"auth": 1996, "void": 0}
    [voided] = [e for e in shop.bus.events("payment-events") if e["eventType"] == "PaymentVoided"]
    assert voided["data"]["reason"] in ("stock_unavailable", "order_cancelled")
    assert check_invariants(shop.bus) == {"CANCELLED": ["out_of_stock"]}


@pytest.mark.parametrize("method", ["pm_card_chargeDeclined", "pm_card_insufficientFunds"])
def test_declined_payment_compensates(stocked, method):
    shop, mug, tea = stocked
    order_id = shop.order("u-1", {tea: 3}, method=method)
    shop.bus.pump()
    order = shop.get_order(order_id)
    assert (order["status"], order["cancellationReason"]) == ("CANCELLED", "payment_declined")
    status, stock = shop.bus.call("inventory", "GET", f"/inventory/{tea}")
    assert stock == {"productId": tea, "available": 3, "reserved": 0}
    [failed] = [e for e in shop.bus.events("payment-events") if e["eventType"] == "PaymentFailed"]
    assert failed["data"]["declineCode"] == {"pm_card_chargeDeclined": "card_declined",
                                             "pm_card_insufficientFunds": "insufficient_funds"}[method]
    assert ledger(order_id) == {"auth": 0}  # declined at the authorisation: nothing held, nothing to capture
    assert check_invariants(shop.bus) == {"CANCELLED": ["payment_declined"]}


def test_cancel_before_confirmation_takes_nothing(stocked):
    """The order's events reach payment in order: authorised first, then voided by the cancel."""
    shop, mug, tea = stocked
    order_id = shop.order("u-1", {mug: 1})
    status, _ = shop.bus.call("order", "POST", f"/orders/{order_id}/cancel", user="u-1")
    assert status == 202
    shop.bus.pump()
    assert shop.get_order(order_id)["cancellationReason"] == "customer_request"
    assert [p["status"] for p in scan("payment") if p["sk"] == "PAYMENT"] == ["VOIDED"]
    assert ledger(order_id) == {"auth": 1250, "void": 0}
    assert check_invariants(shop.bus) == {"CANCELLED": ["customer_request"]}


def test_cancel_between_confirmation_and_capture_voids_the_authorisation_and_restocks(stocked, monkeypatch):
    """Confirmed on the reservation and the authorisation; the capture (after the reservation reaches payment)
    has not happened when the customer cancels: the authorisation is released, nothing is taken or refunded."""
    shop, mug, tea = stocked
    bus = shop.bus
    pending = bus.pending
    monkeypatch.setattr(bus, "pending", lambda: [(s, h, p) for s, h, p in pending()
                                                 if (s.name, h.name) != ("payment", "inventory-outcomes")])
    order_id = shop.order("u-1", {mug: 2})
    bus.pump()
    assert shop.get_order(order_id)["status"] == "CONFIRMED"
    assert [p["status"] for p in scan("payment") if p["sk"] == "PAYMENT"] == ["AUTHORISED"]
    assert bus.call("order", "POST", f"/orders/{order_id}/cancel", user="u-1")[0] == 202
    bus.pump()
    monkeypatch.setattr(bus, "pending", pending)  # the reservation reaches payment late: it captures nothing
    bus.pump()
    order = shop.get_order(order_id)
    assert (order["status"], order["refunded"]) == ("CANCELLED", False)
    assert [p["status"] for p in scan("payment") if p["sk"] == "PAYMENT"] == ["VOIDED"]
    assert ledger(order_id) == {"auth": 2500, "void": 0}
    stock = stocks()[mug]
    assert (stock["available"], stock["reserved"], stock["sold"]) == (10, 0, 0)
    assert check_invariants(bus) == {"CANCELLED": ["customer_request"]}


def test_cancel_after_payment_refunds_and_restocks(stocked):
    shop, mug, tea = stocked
    order_id = shop.order("u-1", {mug: 3})
    shop.bus.pump()
    assert shop.get_order(order_id)["status"] == "CONFIRMED"
    status, _ = shop.bus.call("order", "POST", f"/orders/{order_id}/cancel", user="u-1")
    assert status == 202
    shop.bus.pump()
    order = shop.get_order(order_id)
    assert order["status"] == "CANCELLED" and order["refunded"] is True
    assert [p["status"] for p in scan("payment") if p["sk"] == "PAYMENT"] == ["REFUNDED"]
    assert ledger(order_id) == {"auth": 3750, "capture": 3750, "refund": 3750}
    status, stock = shop.bus.call("inventory", "GET", f"/inventory/{mug}")
    assert stock["available"] == 10
    shipments = [s for s in scan("shipping") if s["sk"] == "SHIPMENT"]
    assert [s["status"] for s in shipments] == ["CANCELLED"]
    assert check_invariants(shop.bus) == {"CANCELLED": ["customer_request"]}


def test_cancel_after_dispatch_is_a_conflict(stocked):
    shop, mug, tea = stocked
    order_id = shop.order("u-1", {mug: 1})
    shop.bus.pump()
    status, _ = shop.bus.call("shipping", "POST", f"/shipments/shp_{order_id}/dispatch", user=ADMIN, admin=True)
    assert status == 200
    shop.bus.pump()
    status, body = shop.bus.call("order", "POST", f"/orders/{order_id}/cancel", user="u-1")
    assert status == 409 and "SHIPPED" in body["message"]
    assert check_invariants(shop.bus) == {"SHIPPED": [None]}


def test_a_cancel_racing_a_dispatch_that_shipping_saw_first_ships_the_order(stocked):
    """The customer's cancel (202) and the admin's dispatch both land before shipping hears of the
    cancel: the parcel has left, so the request is refused; nothing is refunded or restocked."""
    shop, mug, tea = stocked
    order_id = shop.order("u-1", {mug: 2})
    shop.bus.pump()
    assert shop.bus.call("order", "POST", f"/orders/{order_id}/cancel", user="u-1")[0] == 202
    status, _ = shop.bus.call("shipping", "POST", f"/shipments/shp_{order_id}/dispatch", user=ADMIN, admin=True)
    assert status == 200
    shop.bus.pump()
    order = shop.get_order(order_id)
    assert (order["status"], order["refunded"]) == ("SHIPPED", False)
    assert [p["status"] for p in scan("payment") if p["sk"] == "PAYMENT"] == ["CAPTURED"]
    stock = stocks()[mug]
    assert (stock["available"], stock["reserved"], stock["sold"]) == (8, 0, 2)  # shipped units stay sold
    assert shop.bus.call("order", "POST", f"/orders/{order_id}/cancel", user="u-1")[0] == 409
    assert check_invariants(shop.bus) == {"SHIPPED": [None]}


def test_a_cancel_that_shipping_saw_first_makes_the_dispatch_a_conflict(stocked):
    shop, mug, tea = stocked
    order_id = shop.order("u-1", {mug: 2})
    shop.bus.pump()
    assert shop.bus.call("order", "POST", f"/orders/{order_id}/cancel", user="u-1")[0] == 202
    shop.bus.pump()
    status, body = shop.bus.call("shipping", "POST", f"/shipments/shp_{order_id}/dispatch", user=ADMIN, admin=True)
    assert status == 409, body
    order = shop.get_order(order_id)
    assert (order["status"], order["refunded"]) == ("CANCELLED", True)
    stock = stocks()[mug]
    assert (stock["available"], stock["reserved"], stock["sold"]) == (10, 0, 0)
    assert check_invariants(shop.bus) == {"CANCELLED": ["customer_request"]}


@pytest.fixture
def atomic_dynamodb_requests(monkeypatch):
    """DynamoDB applies each request atomically; moto's in-process backend is not thread-safe.
    Serialising request handling keeps that one property and nothing more: threads still
    interleave between calls (read, then a conditional write that may find the data changed)."""
    import threading

    from moto.dynamodb.responses import DynamoHandler

    lock, original = threading.Lock(), DynamoHandler.call_action

    def atomic(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoHandler, "call_action", atomic)


def test_twenty_concurrent_orders_for_five_units(shop, atomic_dynamodb_requests):
    for n in range(20):
        shop.register(f"buyer-{n}")
    scarce = shop.product("LAMP", 3000, stock=5)
    shop.bus.pump()
    for n in range(20):
        shop.order(f"buyer-{n}", {scarce: 1})
    bus: InProcessBus = shop.bus
    bus._relay_all()
    # Reserve all twenty at once, as the mapping's pollers would on twenty partitions.
    created = [r for records in bus.log["order-events"].values() for r in records
               if json.loads(r.value)["eventType"] == "OrderCreated"]
    from inventory import consumers as inventory

    def reserve(i_record):
        i, record = i_record
        with override_settings(bus.settings_for("inventory", "order-reservations")):
            return inventory.order_reservations(msk_event([msk_record(
                topic="order-events", partition=i, offset=0, key=record.key.encode(), value=record.value,
                headers=list(record.headers))]), LocalLambdaContext())

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(reserve, enumerate(created)))
    assert all(r == {"batchItemFailures": []} for r in responses)
    bus.pump()
    outcome = check_invariants(bus)
    assert len(outcome["CONFIRMED"]) == 5
    assert outcome["CANCELLED"] == ["out_of_stock"] * 15


def test_saga_timeout_cancels_a_stuck_order(stocked):
    from datetime import datetime, timedelta

    shop, mug, tea = stocked
    order_id = shop.order("u-1", {mug: 1})
    # Nothing is delivered yet: the saga is stuck; the sweeper runs later than the deadline.
    later = datetime.now(UTC) + timedelta(hours=1)
    assert shop.bus.run_schedule("order", "sweep_timeouts", later) == 1
    shop.bus.pump()
    order = shop.get_order(order_id)
    assert (order["status"], order["cancellationReason"]) == ("CANCELLED", "timeout")
    assert check_invariants(shop.bus) == {"CANCELLED": ["timeout"]}


def _mixed_scenario(shop: Shop) -> dict:
    shop.register("u-1")
    shop.register("u-2")
    mug = shop.product("MUG", 1250, stock=4)
    tea = shop.product("TEA", 499, stock=2)
    shop.bus.pump()
    orders = [shop.order("u-1", {mug: 2}), shop.order("u-2", {tea: 3}),
              shop.order("u-2", {tea: 1}, method="pm_card_chargeDeclined"), shop.order("u-1", {mug: 1, tea: 1})]
    shop.bus.pump()
    shop.bus.call("order", "POST", f"/orders/{orders[3]}/cancel", user="u-1")
    shop.bus.pump()
    names = {mug: "MUG", tea: "TEA"}
    return {"outcome": check_invariants(shop.bus),
            "stock": [(names[product], s["available"], s["sold"]) for product, s in stocks().items()]}


@pytest.mark.parametrize("noisy", [False, True], ids=["in-order-once", "twice-and-shuffled"])
def test_delivery_order_and_duplicates_do_not_change_the_end_state(bus, noisy):
    bus.duplicate = bus.shuffle = noisy
    result = _mixed_scenario(Shop(bus))
    assert {k: sorted(v, key=str) for k, v in result["outcome"].items()} == {
        "CONFIRMED": [None], "CANCELLED": ["customer_request", "out_of_stock", "payment_declined"]}
    assert sorted(result["stock"]) == sorted([("MUG", 2, 2), ("TEA", 2, 0)])


def test_poison_on_a_topic_is_dead_lettered_and_the_partition_moves_on(stocked):
    shop, mug, tea = stocked
    bus = shop.bus
    first = shop.order("u-1", {mug: 1})
    bus._relay_all()
    [created] = [r for records in bus.log["order-events"].values() for r in records]
    partition, offset = bus.inject("order-events", created.key, b"\x00 not json")
    second = shop.order("u-1", {mug: 1})
    bus.pump()
    assert shop.get_order(first)["status"] == "CONFIRMED"
    assert shop.get_order(second)["status"] == "CONFIRMED"
    for service, handler in (("inventory", "order-reservations"), ("payment", "order-payments"),
                             ("shipping", "order-fulfilment"), ("audit", "trail-order"),
                             ("notification", "order-notices"), ("cart", "order-checkout")):
        [message] = dlq(bus, service, handler)
        assert (message["reason"], message["partition"], message["offset"]) == ("not_json", partition, offset)
    check_invariants(bus)
