"""GET /orders/{orderId}?waitFor=...: a long-poll through the order API function, on moto's DynamoDB. The
waiting's clock and sleep are fakes (order.logic.clock, order.logic.sleep): a sleep can move the saga on."""

from __future__ import annotations

import json

import pytest

from local.shop import ADMIN
from shopstream import long_poll
from shopstream.config import override_settings
from tests.support import FakeTime


@pytest.fixture
def fake_time(monkeypatch):
    import order.logic

    fake = FakeTime()
    monkeypatch.setattr(order.logic, "clock", fake.clock)
    monkeypatch.setattr(order.logic, "sleep", fake.sleep)
    return fake


def get(bus, path: str, query: dict[str, str] | None = None, *, user: str = "u-1", admin: bool = False,
        function_timeout: float = long_poll.LONG_POLL_FUNCTION_TIMEOUT_SECONDS) -> tuple[int, dict, dict]:
    from local.context import LocalLambdaContext
    from local.http_events import claims_for, http_event

    event = http_event("GET", path, claims=claims_for(user, admin=admin), query=query)
    with override_settings(bus.settings_for("order")):
        response = bus.apis["order"](event, LocalLambdaContext("order-api", timeout_seconds=function_timeout))
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


@pytest.fixture
def placed(shop):
    """u-1's order, PENDING: the saga has not run yet (nothing pumped since it was placed)."""
    shop.register("u-1")
    shop.register("u-2", name="Grace")
    mug = shop.product("MUG", 1250, stock=10)
    shop.bus.pump()
    return shop, shop.order("u-1", {mug: 1})


def test_a_wait_answers_once_the_saga_confirms_the_order(placed, fake_time):
    shop, order_id = placed
    fake_time.on_sleep = lambda n: shop.bus.pump() if n == 3 else None  # the saga runs during the third wait
    status, body, headers = get(shop.bus, f"/orders/{order_id}", {"waitFor": "CONFIRMED,CANCELLED"})
    assert (status, body["status"], headers[long_poll.OUTCOME_HEADER]) == (200, "CONFIRMED", "reached")
    assert len(fake_time.slept) == 3  # answered at the first read after the change
    assert fake_time.slept == pytest.approx([0.1, 0.15, 0.225])


def test_a_cancelled_order_is_unreachable_for_a_wait_on_confirmation(placed, fake_time):
    shop, order_id = placed
    assert shop.bus.call("order", "POST", f"/orders/{order_id}/cancel", user="u-1")[0] == 202
    status, body, headers = get(shop.bus, f"/orders/{order_id}", {"waitFor": "CONFIRMED", "timeoutSeconds": "25"})
    assert (status, body["status"], headers[long_poll.OUTCOME_HEADER]) == (200, "CANCELLED", "unreachable")
    assert fake_time.slept == []


def test_a_wait_that_times_out_answers_200_with_the_order_as_it_is(placed, fake_time):
    shop, order_id = placed
    status, body, headers = get(shop.bus, f"/orders/{order_id}", {"waitFor": "CONFIRMED", "timeoutSeconds": "3"})
    assert (status, body["status"], headers[long_poll.OUTCOME_HEADER]) == (200, "PENDING", "timeout")
    assert sum(fake_time.slept) == pytest.approx(3)
    status, body, headers = get(shop.bus, f"/orders/{order_id}", {"waitFor": "CONFIRMED", "timeoutSeconds": "0"})
    assert (status, headers[long_poll.OUTCOME_HEADER]) == (200, "timeout")
    assert sum(fake_time.slept) == pytest.approx(3)  # 0: the outcome now, no wait


def test_the_wait_ends_before_the_function_would_time_out(placed, fake_time):
    shop, order_id = placed
    status, _, headers = get(shop.bus, f"/orders/{order_id}", {"waitFor": "CONFIRMED", "timeoutSeconds": "25"},
                             function_timeout=10)
    assert (status, headers[long_poll.OUTCOME_HEADER]) == (200, "timeout")
    waited = sum(fake_time.slept)
    assert 10 - long_poll.ANSWER_MARGIN_SECONDS - 0.5 < waited <= 10 - long_poll.ANSWER_MARGIN_SECONDS


def test_without_waitfor_the_order_is_read_at_once_and_carries_no_outcome(placed, fake_time):
    shop, order_id = placed
    status, body, headers = get(shop.bus, f"/orders/{order_id}", {"timeoutSeconds": "25"})
    assert (status, body["status"]) == (200, "PENDING") and long_poll.OUTCOME_HEADER not in headers
    assert fake_time.slept == []


def test_only_the_owner_or_an_admin_may_wait_on_an_order(placed, fake_time):
    shop, order_id = placed
    status, body, headers = get(shop.bus, f"/orders/{order_id}", {"waitFor": "CONFIRMED"}, user="u-2")
    assert status == 404 and body["message"] == "order not found" and long_poll.OUTCOME_HEADER not in headers
    assert fake_time.slept == []  # refused at the first read: a stranger cannot hold a wait on it
    assert get(shop.bus, "/orders/o_missing", {"waitFor": "CONFIRMED"})[0] == 404
    fake_time.on_sleep = lambda n: shop.bus.pump()
    status, body, headers = get(shop.bus, f"/orders/{order_id}", {"waitFor": "CONFIRMED"}, user=ADMIN, admin=True)
    assert (status, body["status"], headers[long_poll.OUTCOME_HEADER]) == (200, "CONFIRMED", "reached")


@pytest.mark.parametrize("query, field", [
    ({"waitFor": "PENDING"}, "query.waitFor.0"),
    ({"waitFor": "CONFIRMED,SOLD"}, "query.waitFor.1"),
    ({"waitFor": ""}, "query.waitFor.0"),
    ({"waitFor": "CONFIRMED", "timeoutSeconds": "26"}, "query.timeoutSeconds"),
    ({"waitFor": "CONFIRMED", "timeoutSeconds": "-1"}, "query.timeoutSeconds"),
    ({"waitFor": "CONFIRMED", "timeoutSeconds": "soon"}, "query.timeoutSeconds"),
])
def test_an_invalid_wait_is_a_422_naming_the_parameter(placed, fake_time, query, field):
    shop, order_id = placed
    status, body, _ = get(shop.bus, f"/orders/{order_id}", query)
    assert status == 422, body
    assert field in [e["field"] for e in body["errors"]], body
    assert fake_time.slept == []
