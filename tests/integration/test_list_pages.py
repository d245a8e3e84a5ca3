"""List routes answer bounded pages and an opaque cursor: following the cursors returns every item exactly
once, a cursor or limit the route could not have issued is a 422 naming the parameter (never a 500), and
a full page of the largest items the models allow stays under Lambda's 6 MB response limit."""

from __future__ import annotations

import base64
import json

import pytest

from local.shop import ADMIN
from shopstream.config import override_settings
from tests.support import Who

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def get(bus, service: str, path: str, query: dict[str, str] | None = None, *, user: str = "u-1",
        admin: bool = False) -> tuple[int, dict]:
    from local.context import LocalLambdaContext
    from local.http_events import claims_for, http_event

    event = http_event("GET", path, claims=claims_for(user, admin=admin), query=query)
    with override_settings(bus.settings_for(service)):
        response = bus.apis[service](event, LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def every_page(bus, service: str, path: str, items: str, limit: int, *, user: str = "u-1",
               admin: bool = False) -> list[list[dict]]:
    pages, query = [], {"limit": str(limit)}
    while True:
        status, body = get(bus, service, path, query, user=user, admin=admin)
        assert status == 200, body
        assert len(body[items]) <= limit
        pages.append(body[items])
        if not body.get("nextCursor"):
            return pages
        query = {"limit": str(limit), "cursor": body["nextCursor"]}


def _cursor(position) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


@pytest.fixture
def listed(shop):
    shop.register("u-1")
    products = [shop.product(f"SKU-{n}", 100 + n, stock=50 if n == 0 else 0) for n in range(5)]
    orders = [shop.order("u-1", {products[0]: 1}, correlation_id="corr-listed") for _ in range(5)]
    shop.bus.pump()
    return shop, products, orders


def test_products_come_a_page_at_a_time_and_the_cursors_return_each_exactly_once(listed):
    shop, products, _ = listed
    pages = every_page(shop.bus, "catalog", "/products", "products", limit=2)
    assert len(pages) >= 3 and len(pages[0]) == 2
    listed_ids = [p["productId"] for page in pages for p in page]
    assert sorted(listed_ids) == sorted(products)  # every product, none twice
    names = [p["name"] for page in pages for p in page]
    assert names == sorted(names)  # by name, across pages


def test_a_customer_s_orders_come_newest_first_a_page_at_a_time(listed):
    shop, _, orders = listed
    pages = every_page(shop.bus, "order", "/users/u-1/orders", "orders", limit=2, user="u-1")
    assert len(pages) >= 3 and len(pages[0]) == 2
    listed_ids = [o["orderId"] for page in pages for o in page]
    assert sorted(listed_ids) == sorted(orders) and len(listed_ids) == len(set(listed_ids))
    created = [o["createdAt"] for page in pages for o in page]
    assert created == sorted(created, reverse=True)


def test_a_trail_comes_a_page_at_a_time_and_a_page_stops_at_its_byte_budget(listed, monkeypatch):
    shop, _, _ = listed
    who: Who = {"user": ADMIN, "admin": True}
    status, whole = get(shop.bus, "audit", "/audit/corr-listed", {"limit": "500"}, **who)
    assert status == 200 and "nextCursor" not in whole or whole["nextCursor"] is None
    every_id = sorted(e["eventId"] for e in whole["events"])
    assert len(every_id) > 10
    pages = every_page(shop.bus, "audit", "/audit/corr-listed", "events", limit=3, **who)
    assert sorted(e["eventId"] for page in pages for e in page) == every_id

    from audit import store

    monkeypatch.setattr(store, "TRAIL_PAGE_BYTES", 1)  # smaller than any event: one a page, never none
    pages = every_page(shop.bus, "audit", "/audit/corr-listed", "events", limit=500, **who)
    assert {len(page) for page in pages} == {1} and sorted(e["eventId"] for p in pages for e in p) == every_id


@pytest.mark.parametrize("service, path, query, parameter", [
    ("catalog", "/products", {"limit": "0"}, "query.limit"),
    ("catalog", "/products", {"limit": "101"}, "query.limit"),
    ("catalog", "/products", {"limit": "ten"}, "query.limit"),
    ("order", "/users/u-1/orders", {"limit": "26"}, "query.limit"),
    ("audit", "/audit/corr-listed", {"limit": "501"}, "query.limit"),
    ("catalog", "/products", {"cursor": "not a cursor!"}, "query.cursor"),
    ("catalog", "/products", {"cursor": "x" * 6001}, "query.cursor"),
    ("catalog", "/products", {"cursor": "AAAA"}, "query.cursor"),  # base64 of bytes that are not JSON
    ("catalog", "/products", {"cursor": "A"}, "query.cursor"),  # not even base64
    ("catalog", "/products", {"cursor": _cursor([1, 2])}, "query.cursor"),
    ("catalog", "/products", {"cursor": _cursor({"sk": "PRODUCT"})}, "query.cursor"),  # a trail's shape
    ("catalog", "/products", {"cursor": _cursor({"gsi1sk": "a", "pk": "b", "sk": 3})}, "query.cursor"),
    ("catalog", "/products", {"cursor": _cursor({"gsi1sk": "", "pk": "b", "sk": "c"})}, "query.cursor"),
    ("catalog", "/products", {"cursor": _cursor({"gsi1sk": "a" * 1025, "pk": "b", "sk": "c"})}, "query.cursor"),
    ("catalog", "/products", {"cursor": _cursor({"gsi1sk": "\ud800", "pk": "b", "sk": "c"})}, "query.cursor"),
    # another listing's partition cannot be smuggled in
    ("order", "/users/u-1/orders", {"cursor": _cursor({"gsi1pk": "USER#u-2", "gsi1sk": "a", "pk": "b",
                                                       "sk": "c"})}, "query.cursor"),
    ("audit", "/audit/corr-listed", {"cursor": _cursor({"gsi1sk": "a", "pk": "b", "sk": "c"})}, "query.cursor"),
])
def test_a_cursor_or_limit_the_route_could_not_have_issued_is_a_422_naming_it(shop, service, path, query,
                                                                             parameter):
    status, body = get(shop.bus, service, path, query, user=ADMIN, admin=True)
    assert status == 422, body
    assert parameter in body["message"]


def test_a_well_formed_forged_cursor_only_moves_within_the_caller_s_own_listing(listed):
    shop, _, orders = listed
    forged = _cursor({"gsi1sk": "~", "pk": "ORDER#nobody", "sk": "STATE"})  # before every order, newest first
    status, page = get(shop.bus, "order", "/users/u-1/orders", {"cursor": forged}, user="u-1")
    assert status == 200 and sorted(o["orderId"] for o in page["orders"]) == sorted(orders)
    assert {o["userId"] for o in page["orders"]} == {"u-1"}


def _lambda_response_bytes(body: dict) -> int:
    """What Lambda returns for an API answer: the body JSON-encoded as the resolver does (ASCII, compact),
    inside the JSON of the function's response."""
    text = json.dumps(body, separators=(",", ":"))
    return len(json.dumps({"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": text}))


ASTRAL = "\U0001f600"  # 4 bytes of UTF-8; 12 once JSON-escaped, 14 inside Lambda's response


def test_a_full_page_of_the_largest_products_fits_lambda_s_response():
    from catalog.models import PRODUCTS_PAGE_MAX, ProductList
    from shopstream.events import MAX_AMOUNT

    product = {"productId": ASTRAL * 128, "sku": "S" * 64, "name": ASTRAL * 200, "status": "DISCONTINUED",
               "price": {"amount": MAX_AMOUNT, "currency": "EUR"}, "version": 10**18,
               "availability": {"available": 10**18, "inStock": False}}
    page = ProductList.model_validate({"products": [product] * PRODUCTS_PAGE_MAX, "nextCursor": "c" * 6000})
    size = _lambda_response_bytes(page.model_dump(mode="json", by_alias=True))
    assert size < 0.6 * 1024 * 1024 < LAMBDA_RESPONSE_LIMIT  # as models.py works it out


def test_a_full_page_of_the_largest_orders_fits_lambda_s_response():
    from order.models import ORDERS_PAGE_MAX, OrderHistory
    from shopstream.events import MAX_AMOUNT, MAX_LINES, MAX_QUANTITY

    line = {"productId": ASTRAL * 128, "quantity": MAX_QUANTITY, "unitPrice": {"amount": MAX_AMOUNT,
                                                                              "currency": "EUR"}}
    order = {"orderId": ASTRAL * 128, "userId": ASTRAL * 128, "status": "CANCELLATION_REQUESTED",
             "items": [line] * MAX_LINES, "total": {"amount": MAX_AMOUNT, "currency": "EUR"},
             "paymentMethod": ASTRAL * 64, "shippingAddress": {"line1": ASTRAL * 200, "line2": ASTRAL * 200,
                                                               "city": ASTRAL * 100, "postalCode": ASTRAL * 20,
                                                               "country": "IE"},
             "cartId": ASTRAL * 128, "cancellationReason": ASTRAL * 200, "paymentId": ASTRAL * 128,
             "shipmentId": ASTRAL * 128, "refunded": True, "createdAt": "2026-12-04T00:00:00.000000+00:00",
             "updatedAt": "2026-12-04T00:00:00.000000+00:00", "version": 10**18, "correlationId": ASTRAL * 128}
    page = OrderHistory.model_validate({"userId": ASTRAL * 128, "customerName": ASTRAL * 200,
                                        "orders": [order] * ORDERS_PAGE_MAX, "nextCursor": "c" * 6000})
    size = _lambda_response_bytes(page.model_dump(mode="json", by_alias=True))
    assert size < 3 * 1024 * 1024 < LAMBDA_RESPONSE_LIMIT  # as models.py works it out


def test_a_full_page_of_a_trail_fits_lambda_s_response():
    from audit import store

    # The worst envelope text for its length: every character one that Lambda's response escapes.
    envelope = {"eventId": "e", "data": {"x": '"' * (store.TRAIL_PAGE_BYTES // 2 - 20)}}  # stored as \"
    assert len(json.dumps(envelope, separators=(",", ":"))) <= store.TRAIL_PAGE_BYTES
    size = _lambda_response_bytes({"correlationId": "c" * 128, "events": [envelope], "nextCursor": "c" * 6000})
    assert size < 4.1 * 1024 * 1024 < LAMBDA_RESPONSE_LIMIT


def test_live_analytics_at_its_most_minutes_of_the_largest_windows_fits_lambda_s_response(shop):
    from audit.models import LIVE_ALERTS_BYTES, LIVE_MINUTES_MAX, WindowView
    from shopstream.events.common import ISO_4217_CODES

    most = 10**38 - 1  # DynamoDB's largest integer
    window = WindowView.model_validate({
        "start": "2026-12-04T00:00:00.000000Z", "end": "2026-12-04T00:01:00.000000Z", "closed": True,
        "ordersPlaced": most, "ordersConfirmed": most, "paymentAttempts": most, "paymentsFailed": most,
        "ordersCancelled": dict.fromkeys(("out_of_stock", "payment_declined", "customer_request", "timeout"), most),
        "revenue": dict.fromkeys(ISO_4217_CODES, most), "paymentFailureRate": -1.2345678901234567e-300,
        "confirmLatencyMs": {"count": most, "p50": most, "p95": most}, "lateEvents": most})
    windows = [window.model_dump(mode="json", by_alias=True)] * LIVE_MINUTES_MAX
    alerts_at_most = 2 * LIVE_ALERTS_BYTES  # their JSON, escaped once more in Lambda's response
    assert _lambda_response_bytes({"windows": windows}) + alerts_at_most < 4 * 1024 * 1024 < LAMBDA_RESPONSE_LIMIT
    status, _ = get(shop.bus, "audit", "/analytics/live", {"minutes": str(LIVE_MINUTES_MAX + 1)}, user=ADMIN,
                    admin=True)
    assert status == 422


def test_a_bounded_list_keeps_its_first_items_within_the_budget_and_counts_the_rest():
    from shopstream.pages import first_within

    alerts = [{"alertId": f"a-{n}", "summary": "x" * 100} for n in range(10)]
    one = len(json.dumps(alerts[0], separators=(",", ":")))
    assert first_within(alerts, 3 * one) == (alerts[:3], 7)
    assert first_within(alerts, 1) == (alerts[:1], 9)  # never empty while there is one
    assert first_within(alerts, 100 * one) == (alerts, 0)
    assert first_within([], 10) == ([], 0)
