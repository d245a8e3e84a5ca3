"""The black-box suite: the saga as a client sees it, over HTTP only, against any deployment (conftest.py).

Each check makes its own customers and products (names unique to the run), so runs against a long-lived
environment do not disturb each other; what a run registered is erased and withdrawn at its end.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.blackbox.deployments import Deployment
from tests.support import Who

pytestmark = pytest.mark.broker
ADDRESS = {"line1": "1 Test Street", "city": "Dublin", "postalCode": "D01", "country": "IE"}
ADMIN: Who = {"user": "e2e-admin", "admin": True}
SETTLE_SECONDS = 120  # a deployed saga crosses six mappings; locally it takes a second or two


class Shopper:
    """One run's view of the shop: its own names, and the calls a shop front-end and an admin would make."""

    def __init__(self, deployment: Deployment):
        self.deployment, self.client = deployment, deployment.client
        self.run = uuid.uuid4().hex[:8]

    def customer(self, name: str) -> str:
        user = f"{name}-{self.run}"
        status, body, _ = self.client.call("POST", "/users", user=user, body={
            "email": f"{user}@example.invalid", "name": name.title()})
        assert status == 201, body
        self.deployment.customers.append(user)
        return user

    def product(self, name: str, price: int, stock: int) -> str:
        status, body, _ = self.client.call("POST", "/products", **ADMIN, body={
            "sku": f"E2E-{name}-{self.run}".upper(), "name": name, "price": {"amount": price, "currency": "EUR"}})
        assert status == 201, body
        product = str(body["productId"])
        self.deployment.products.append(product)
        self.client.wait_until(lambda: self.client.call("GET", f"/inventory/{product}", **ADMIN)[0] == 200,
                               timeout=SETTLE_SECONDS)
        status, body, _ = self.client.call("POST", f"/inventory/{product}/adjustments", **ADMIN,
                                           body={"delta": stock, "reason": "e2e"})
        assert status == 200, body
        return product

    def order(self, user: str, product: str, *, quantity: int = 1, method: str = "pm_card_visa") -> tuple[str, str]:
        body = {"items": [{"productId": product, "quantity": quantity}], "paymentMethod": method,
                "shippingAddress": ADDRESS}
        # 422 while the order service's replicas have not seen the customer or the product yet
        status, answer, headers = self.client.wait_until(
            lambda: (r := self.client.call("POST", "/orders", user=user, body=body)) and r[0] != 422 and r,
            timeout=SETTLE_SECONDS)
        assert status == 202, answer
        assert headers.get("X-Correlation-Id") == answer["correlationId"]
        return answer["orderId"], answer["correlationId"]

    def settled(self, user: str, order_id: str, *statuses: str) -> dict[str, Any]:
        """The order once it is in one of ``statuses`` (by default the saga's outcomes) or can no longer come to
        one: long-polls (GET /orders/{orderId}?waitFor=), no polling loop."""
        order, outcome = self.client.await_order(order_id, user, *(statuses or ("CONFIRMED", "CANCELLED")),
                                                 timeout=SETTLE_SECONDS)
        assert outcome != "timeout", order
        return order

    def stock(self, product: str) -> dict[str, Any]:
        return self.client.wait_until(lambda: (s := self.client.call("GET", f"/inventory/{product}", **ADMIN)[1])
                                      and s["reserved"] == 0 and s, timeout=SETTLE_SECONDS)


@pytest.fixture
def shop(deployment) -> Shopper:
    return Shopper(deployment)


def test_an_order_is_confirmed_shipped_and_delivered(shop):
    ada, mug = shop.customer("ada"), shop.product("mug", 1250, stock=5)
    order_id, _ = shop.order(ada, mug, quantity=2)
    confirmed = shop.settled(ada, order_id)
    assert confirmed["status"] == "CONFIRMED" and confirmed["total"] == {"amount": 2500, "currency": "EUR"}
    client = shop.client
    client.wait_until(lambda: client.call("GET", f"/orders/{order_id}/shipment", user=ada)[0] == 200,
                      timeout=SETTLE_SECONDS)
    assert client.call("POST", f"/shipments/shp_{order_id}/dispatch", **ADMIN)[0] == 200
    assert shop.settled(ada, order_id, "SHIPPED")["status"] == "SHIPPED"
    assert client.call("POST", f"/orders/{order_id}/cancel", user=ada)[0] == 409  # it has left
    assert client.call("POST", f"/shipments/shp_{order_id}/deliver", **ADMIN)[0] == 200
    assert shop.settled(ada, order_id, "DELIVERED")["status"] == "DELIVERED"
    level = shop.stock(mug)
    assert (level["available"], level["reserved"]) == (3, 0)


def test_a_declined_card_cancels_the_order_and_gives_the_stock_back(shop):
    grace, lamp = shop.customer("grace"), shop.product("lamp", 4000, stock=2)
    order_id, _ = shop.order(grace, lamp, method="pm_card_chargeDeclined")
    cancelled = shop.settled(grace, order_id)
    assert (cancelled["status"], cancelled["cancellationReason"]) == ("CANCELLED", "payment_declined")
    assert shop.stock(lamp)["available"] == 2


def test_the_last_item_goes_to_one_order_and_the_other_is_told_it_is_out_of_stock(shop):
    ada, grace, vase = shop.customer("ada"), shop.customer("grace"), shop.product("vase", 900, stock=1)
    first, _ = shop.order(ada, vase)
    second, _ = shop.order(grace, vase)
    outcomes = sorted([(shop.settled(ada, first)["status"], shop.settled(ada, first).get("cancellationReason")),
                       (shop.settled(grace, second)["status"], shop.settled(grace, second).get("cancellationReason"))],
                      key=str)
    assert outcomes == sorted([("CONFIRMED", None), ("CANCELLED", "out_of_stock")], key=str), outcomes
    assert shop.stock(vase)["available"] == 0


def test_a_cancelled_confirmed_order_gives_the_money_back_and_is_restocked(shop):
    """A confirmed order's payment is authorised and captured soon after: a cancel that reaches payment after the
    capture refunds it, one that overtakes the capture releases the authorisation (nothing was taken)."""
    ada, book = shop.customer("ada"), shop.product("book", 1500, stock=3)
    order_id, _ = shop.order(ada, book)
    assert shop.settled(ada, order_id)["status"] == "CONFIRMED"
    status, body, _ = shop.client.call("POST", f"/orders/{order_id}/cancel", user=ada)
    assert status == 202, body
    cancelled = shop.settled(ada, order_id, "CANCELLED")
    assert (cancelled["status"], cancelled["cancellationReason"]) == ("CANCELLED", "customer_request")
    payment = shop.client.wait_until(
        lambda: (p := shop.client.call("GET", f"/payments/pay_{order_id}", **ADMIN)[1])
        and p["status"] in ("REFUNDED", "VOIDED") and p, timeout=SETTLE_SECONDS)
    if payment["status"] == "REFUNDED":
        assert shop.client.wait_until(lambda: shop.client.call("GET", f"/orders/{order_id}", user=ada)[1]["refunded"],
                                      timeout=SETTLE_SECONDS)
    else:
        assert payment["voidReference"] and not payment.get("providerReference")  # never captured
    assert shop.stock(book)["available"] == 3


def test_a_customer_sees_only_their_own_orders_and_profile(shop):
    ada, grace, pen = shop.customer("ada"), shop.customer("grace"), shop.product("pen", 300, stock=2)
    order_id, _ = shop.order(ada, pen)
    shop.settled(ada, order_id)
    call, ada_id = shop.client.call, shop.client.user_id(ada)
    assert call("GET", f"/orders/{order_id}", user=grace)[0] == 404  # someone else's: not found
    assert call("GET", f"/orders/{order_id}?waitFor=DELIVERED&timeoutSeconds=25", user=grace)[0] == 404  # nor waited on
    assert call("POST", f"/orders/{order_id}/cancel", user=grace)[0] == 404
    assert call("GET", f"/users/{ada_id}/orders", user=grace)[0] == 404
    assert call("GET", f"/users/{ada_id}", user=grace)[0] == 404
    assert call("GET", f"/orders/{order_id}", user=ada)[0] == 200
    assert call("GET", f"/orders/{order_id}")[0] == 401  # no token


def test_the_audit_trail_holds_the_whole_causal_chain_of_an_order(shop):
    ada, cup = shop.customer("ada"), shop.product("cup", 700, stock=2)
    order_id, correlation = shop.order(ada, cup)
    assert shop.settled(ada, order_id)["status"] == "CONFIRMED"

    def chain() -> list[dict[str, Any]] | None:
        status, body, _ = shop.client.call("GET", f"/audit/{correlation}", **ADMIN)
        events = body.get("events", []) if status == 200 else []
        wanted = {"OrderCreated", "InventoryReserved", "PaymentInitiated", "PaymentProcessed", "OrderConfirmed"}
        return events if wanted <= {e["eventType"] for e in events} else None

    events = shop.client.wait_until(chain, timeout=SETTLE_SECONDS)
    # The request started the chain: its events (the order, and the request's own audit record) have no cause;
    # every other event names one that is in the trail before it.
    roots = {e["eventType"] for e in events if e.get("causationId") is None}
    assert roots == {"OrderCreated", "AuditRecorded"}, roots
    seen: set[str] = set()
    for event in events:
        assert event.get("causationId") is None or event["causationId"] in seen, event
        seen.add(event["eventId"])
    assert all(e["correlationId"] == correlation for e in events)
