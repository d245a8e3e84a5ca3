"""Service behaviour beyond the saga: API contract, read models, sweepers, adapters, analytics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from local.shop import ADDRESS, ADMIN, scan
from shopstream import catalog
from shopstream.config import override_settings
from tests.integration.conftest import check_invariants, stocks
from tools.generate import openapi_document


@pytest.fixture
def ready(shop):
    shop.register("u-1")
    shop.register("u-2", name="Grace")
    mug = shop.product("MUG", 1250, stock=10)
    shop.bus.pump()
    return shop, mug


def test_the_openapi_document_has_exactly_the_catalog_routes():
    documented = {(method.upper(), path) for path, ops in openapi_document()["paths"].items() for method in ops}
    declared = {(r.method, r.path) for s in catalog.SERVICES for r in s.routes}
    assert documented == declared


@pytest.mark.parametrize("service, method, path, body, field", [
    ("order", "POST", "/orders", {"items": [{"productId": "p", "quantity": 0}], "paymentMethod": "pm_card_visa",
                                  "shippingAddress": ADDRESS}, "body.items.0.quantity"),
    ("order", "POST", "/orders", {"items": [], "paymentMethod": "pm_card_visa", "shippingAddress": ADDRESS},
     "body.items"),
    ("order", "POST", "/orders", {"items": [{"productId": "p", "quantity": 1}], "paymentMethod": "pm_card_visa",
                                  "shippingAddress": {**ADDRESS, "country": "Ireland"}},
     "body.shippingAddress.country"),
    ("user", "POST", "/users", {"email": "not-an-email", "name": "x"}, "body.email"),
    ("catalog", "POST", "/products", {"sku": "A", "name": "A", "price": {"amount": -5, "currency": "EUR"}},
     "body.price.amount"),
    ("inventory", "POST", "/inventory/p/adjustments", {"delta": "many", "reason": "x"}, "body.delta"),
    ("cart", "POST", "/carts", {"items": [{"productId": "p"}]}, "body.items.0.quantity"),
])
def test_invalid_requests_are_422_naming_the_field(ready, service, method, path, body, field):
    shop, _ = ready
    status, answer = shop.bus.call(service, method, path, user=ADMIN, admin=True, body=body)
    assert status == 422, answer
    assert field in [e["field"] for e in answer["errors"]]


def test_not_found_forbidden_conflict_and_privacy(ready):
    shop, mug = ready
    call = shop.bus.call
    assert call("order", "GET", "/orders/o_missing", user="u-1")[0] == 404
    assert call("catalog", "POST", "/products", user="u-1",
                body={"sku": "X", "name": "X", "price": {"amount": 1, "currency": "EUR"}})[0] == 403
    assert call("inventory", "POST", f"/inventory/{mug}/adjustments", user="u-1",
                body={"delta": 1, "reason": "x"})[0] == 403
    assert call("inventory", "POST", f"/inventory/{mug}/adjustments", user=ADMIN, admin=True,
                body={"delta": -11, "reason": "too many"})[0] == 409
    assert call("catalog", "POST", "/products", user=ADMIN, admin=True,
                body={"sku": "MUG", "name": "again", "price": {"amount": 1, "currency": "EUR"}})[0] == 409
    status, cart = call("cart", "POST", "/carts", user="u-1", body={"items": [{"productId": mug, "quantity": 1}]})
    assert status == 201
    assert call("cart", "GET", f"/carts/{cart['cartId']}", user="u-2")[0] == 404  # someone else's: not found
    assert call("user", "GET", "/users/u-1", user="u-2")[0] == 404
    assert call("order", "GET", "/users/u-1/orders", user="u-2")[0] == 404
    status, body = call("order", "POST", "/orders", user="u-1", body={
        "items": [{"productId": "p_unknown", "quantity": 1}], "paymentMethod": "pm_card_visa",
        "shippingAddress": ADDRESS})
    assert status == 422 and "p_unknown" in body["message"]
    assert call("order", "POST", "/orders", user="nobody", body={
        "items": [{"productId": mug, "quantity": 1}], "paymentMethod": "pm_card_visa",
        "shippingAddress": ADDRESS})[0] == 422


def test_every_mutating_call_is_audited_with_its_outcome(ready):
    shop, mug = ready
    shop.bus.call("catalog", "POST", "/products", user="u-1", correlation_id="corr-denied",
                  body={"sku": "X", "name": "X", "price": {"amount": 1, "currency": "EUR"}})
    shop.bus.call("user", "POST", "/users", user="u-9", correlation_id="corr-bad", body={"email": "x"})
    shop.bus.pump()
    audits = {e["correlationId"]: e["data"] for e in shop.bus.events("audit-events")}
    assert audits["corr-denied"] == {"actor": "u-1", "action": "POST /products", "resource": "/products",
                                     "outcome": "rejected", "statusCode": 403}
    assert audits["corr-bad"]["statusCode"] == 422


def test_cart_checkout_and_abandonment_with_a_reminder(ready):
    shop, mug = ready
    call = shop.bus.call
    _, kept = call("cart", "POST", "/carts", user="u-1", body={"items": [{"productId": mug, "quantity": 1}]})
    _, idle = call("cart", "POST", "/carts", user="u-2", body={"items": [{"productId": mug, "quantity": 2}]})
    status, updated = call("cart", "PUT", f"/carts/{idle['cartId']}/items", user="u-2",
                           body={"items": [{"productId": mug, "quantity": 3}]})
    assert status == 200 and updated["version"] == 2
    shop.order("u-1", {mug: 1}, cartId=kept["cartId"])
    shop.bus.pump()
    assert call("cart", "GET", f"/carts/{kept['cartId']}", user="u-1")[1]["status"] == "CHECKED_OUT"
    later = datetime.now(UTC) + timedelta(days=2)
    assert shop.bus.run_schedule("cart", "sweep_abandoned", later) == 1
    shop.bus.pump()
    assert call("cart", "GET", f"/carts/{idle['cartId']}", user="u-2")[1]["status"] == "ABANDONED"
    reminders = [n for n in scan("notification") if n["sk"] == "MESSAGE" and n["template"] == "cart-reminder"]
    assert [(r["userId"], r["status"]) for r in reminders] == [("u-2", "SENT")]
    assert call("cart", "PUT", f"/carts/{idle['cartId']}/items", user="u-2", body={"items": []})[0] == 409


def test_profile_changes_reach_order_history_and_the_customer(ready):
    shop, mug = ready
    order_id = shop.order("u-1", {mug: 1})
    status, _ = shop.bus.call("user", "PATCH", "/users/u-1", user="u-1", body={"name": "Ada Lovelace"})
    assert status == 200
    shop.bus.pump()
    status, history = shop.bus.call("order", "GET", "/users/u-1/orders", user="u-1")
    assert history["customerName"] == "Ada Lovelace" and [o["orderId"] for o in history["orders"]] == [order_id]
    templates = [n["template"] for n in scan("notification") if n["sk"] == "MESSAGE" and n["userId"] == "u-1"]
    assert "profile-updated" in templates


def test_availability_never_goes_back_to_an_older_stock_version(ready):
    from catalog import logic as catalog_logic
    from local.samples import sample_event
    from shopstream.consumer import InboundEvent
    from shopstream.events import InventoryAdjusted

    shop, mug = ready

    def adjusted(available: int, version: int) -> InboundEvent:
        data = InventoryAdjusted.model_validate({"productId": mug, "delta": 0, "reason": "sync", "level": {
            "productId": mug, "quantity": available, "available": available, "reserved": 0, "version": version}})
        return InboundEvent(sample_event("InventoryAdjusted"), data, "inventory-events", 0, 0)

    others = stocks()[mug]["available"] - _counter(mug, 0)["available"]  # the product's other counters
    with override_settings(shop.bus.settings_for("catalog")):
        catalog_logic.on_stock_event(adjusted(7, 50))
        catalog_logic.on_stock_event(adjusted(99, 49))  # late, older
        catalog_logic.on_stock_event(adjusted(99, 50))  # duplicate version
    assert shop.bus.call("catalog", "GET", f"/products/{mug}")[1]["availability"]["available"] == others + 7


def _counter(product_id: str, shard: int) -> dict:
    [counter] = [i for i in scan("inventory") if i.get("productId") == product_id and i.get("shard") == shard]
    return counter


def test_provider_timeouts_are_retried_with_the_same_key_and_never_move_money_twice(ready):
    from payment import provider

    shop, mug = ready
    simulator = provider.provider
    assert isinstance(simulator, provider.SimulatedProvider)  # the provider the services call here
    simulator.timeouts_to_inject = 4  # more than one invocation's retries: the mapping retries the record
    try:
        order_id = shop.order("u-1", {mug: 2})
        shop.bus.pump()
    finally:
        simulator.timeouts_to_inject = 0
    assert shop.get_order(order_id)["status"] == "CONFIRMED"
    calls = [i["pk"] for i in scan("payment") if i["sk"] == "LEDGER"]
    assert sorted(calls) == [f"PROVIDER#auth_pay_{order_id}", f"PROVIDER#capture_pay_{order_id}"]
    check_invariants(shop.bus)


def test_audit_archive_keeps_every_event_by_topic_and_date(ready):
    import boto3

    from local import naming

    shop, mug = ready
    shop.order("u-1", {mug: 1})
    shop.bus.pump()
    from audit import store as audit_store

    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=naming.AUDIT_ARCHIVE_BUCKET)["Contents"]]
    events = {e["eventId"]: e for t in catalog.TOPICS for e in shop.bus.events(t.name)}
    assert audit_store.archived(naming.AUDIT_ARCHIVE_BUCKET) == events
    # one object per batch, partition and day: fewer objects than events, each under its topic and day
    assert len(keys) < len(events)
    for key in keys:
        topic, year, month, day, name = key.split("/")
        assert topic in {t.name for t in catalog.TOPICS} and len(year) == 4 and name.endswith(".jsonl")
    trail = [i for i in scan("audit") if i["pk"].startswith("TRAIL#")]
    assert len(trail) == len(events)


def test_the_audit_trail_is_written_once_per_event_without_an_idempotency_record(ready):
    """The trail handlers keep no Powertools record (catalog: idempotency=False): their conditional put
    and If-None-Match object are the record. Redelivered everything: one trail item, one object version."""
    import boto3

    from local import naming

    shop, mug = ready
    shop.order("u-1", {mug: 1})
    shop.bus.pump()
    before = len([i for i in scan("audit") if i["pk"].startswith("TRAIL#")])
    for cursor in shop.bus.cursors.values():
        cursor.next_offset = 0  # a full replay of every partition into every handler
    shop.bus.pump()
    assert len([i for i in scan("audit") if i["pk"].startswith("TRAIL#")]) == before
    from audit import store as audit_store

    # the archive: every event (at least once; a batch formed differently is another object), and no
    # object rewritten (If-None-Match): the locked bucket grows no second version of anything
    versions = boto3.client("s3").list_object_versions(Bucket=naming.AUDIT_ARCHIVE_BUCKET)["Versions"]
    assert len(versions) == len({v["Key"] for v in versions})
    assert len(audit_store.archived(naming.AUDIT_ARCHIVE_BUCKET)) == before
    assert all(not i["id"].startswith("audit.trail-") for i in scan_idempotency("audit"))
    check_invariants(shop.bus)


def scan_idempotency(service: str) -> list[dict]:
    import boto3

    from local import naming

    return [{"id": i["id"]["S"]} for i in boto3.client("dynamodb").scan(
        TableName=naming.idempotency_table(service))["Items"]]


def test_analytics_emits_orders_revenue_and_payment_failures(ready, monkeypatch, capsys):
    from shopstream import observability

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    observability.metrics.cache_clear()
    shop, mug = ready
    shop.order("u-1", {mug: 2})
    shop.order("u-2", {mug: 1}, method="pm_card_chargeDeclined")
    observability.metrics().clear_metrics()  # instances share one metric set; drop earlier tests' values
    capsys.readouterr()
    shop.bus.pump()
    totals: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            blob = json.loads(line)
            for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values = blob[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(
                    values if isinstance(values, list) else [values])
    observability.metrics.cache_clear()
    assert totals["OrdersPlaced"] == 2 and totals["OrdersConfirmed"] == 1 and totals["OrdersCancelled"] == 1
    assert totals["RevenueEUR"] == 2500
    assert totals["PaymentAttempts"] == 2 and totals["PaymentsFailed"] == 1


def test_event_sourced_orders_refuse_a_concurrent_append(ready):
    from order import aggregate, store
    from shopstream.transaction import ConditionFailed, UnitOfWork

    shop, mug = ready
    order_id = shop.order("u-1", {mug: 1})
    with override_settings(shop.bus.settings_for("order")):
        seen = store.load(order_id)
        first, second = UnitOfWork(), UnitOfWork()
        for uow, reason in ((first, "timeout"), (second, "customer_request")):
            [change] = aggregate.cancel(seen, reason)
            store.append(uow, seen, [(change, "t")], aggregate.evolve(seen, change, "t"))
        first.commit()
        with pytest.raises(ConditionFailed):
            second.commit()
        assert store.rebuild(order_id).cancellation_reason == "timeout"


# --- API hardening: no input yields a 500, every refusal names what is wrong ----------------------
def _invoke(bus, service: str, method: str, path: str, *, headers: dict | None = None, raw: bytes | None = None,
            body=None, user: str = "u-1", admin: bool = False) -> dict:
    from local.context import LocalLambdaContext
    from local.http_events import claims_for, http_event

    if raw is None and body is not None:
        raw = json.dumps(body).encode()
    event = http_event(method, path, claims=claims_for(user, admin=admin), raw_bytes=raw,
                       headers={"content-type": "application/json", **(headers or {})})
    with override_settings(bus.settings_for(service)):
        return bus.apis[service](event, LocalLambdaContext())


ORDER = {"items": [{"productId": "p", "quantity": 1}], "paymentMethod": "pm_card_visa", "shippingAddress": ADDRESS}


@pytest.mark.parametrize("sent", ["x" * 129, "has spaces", "ünïcode", "-leading-dash"])
def test_a_correlation_id_off_the_pattern_is_replaced_and_the_response_says_so(ready, sent):
    shop, mug = ready
    response = _invoke(shop.bus, "order", "POST", "/orders", headers={"x-correlation-id": sent},
                       body={**ORDER, "items": [{"productId": mug, "quantity": 1}]})
    assert response["statusCode"] == 202
    used = response["headers"]["X-Correlation-Id"]
    assert used != sent and len(used) <= 128 and "X-Correlation-Id-Replaced" in response["headers"]
    assert json.loads(response["body"])["correlationId"] == used


def test_a_good_correlation_id_is_kept(ready):
    shop, _ = ready
    response = _invoke(shop.bus, "user", "GET", "/users/u-1", headers={"x-correlation-id": "trail-42.a:b"})
    assert response["headers"]["X-Correlation-Id"] == "trail-42.a:b"
    assert "X-Correlation-Id-Replaced" not in response["headers"]


@pytest.mark.parametrize("path", ["/orders/" + "o" * 129, "/orders/has%20space", "/orders/a$b"])
def test_path_parameters_are_bounded(ready, path):
    shop, _ = ready
    response = _invoke(shop.bus, "order", "GET", path)
    assert response["statusCode"] == 422, response
    assert "path.orderId" in [e["field"] for e in json.loads(response["body"])["errors"]]


@pytest.mark.parametrize("content_type, raw, status", [
    ("text/plain", b'{"email": "a@b.ie", "name": "A"}', 415),
    ("application/x-www-form-urlencoded", b"email=a@b.ie", 415),
    ("", b'{"email": "a@b.ie", "name": "A"}', 415),
    ("application/json; charset=latin-1", b'{"email": "a@b.ie", "name": "A"}', 415),
    ("json", b"{}", 400),
    ("application/json", b'{"email": "\xff\xfe@b.ie", "name": "A"}', 400),
    ("application/json", b"{not json", 422),
])
def test_a_body_that_is_not_utf8_json_is_refused_with_4xx(ready, content_type, raw, status):
    shop, _ = ready
    response = _invoke(shop.bus, "user", "POST", "/users", headers={"content-type": content_type}, raw=raw,
                       user="u-new")
    assert response["statusCode"] == status, response
    assert json.loads(response["body"])["message"]


@pytest.mark.parametrize("body, field", [
    ({"sku": "BIG", "name": "Big", "price": {"amount": 10**40, "currency": "EUR"}}, "body.price.amount"),
    ({"sku": "BIG", "name": "Big", "price": {"amount": 100, "currency": "XXX"}}, "body.price.currency"),
    ({"sku": "BIG", "name": "N" * 201, "price": {"amount": 100, "currency": "EUR"}}, "body.name"),
])
def test_values_that_could_never_be_stored_are_422_at_the_api(ready, body, field):
    shop, _ = ready
    status, answer = shop.bus.call("catalog", "POST", "/products", user=ADMIN, admin=True, body=body)
    assert status == 422 and field in [e["field"] for e in answer["errors"]], answer


def test_duplicate_lines_are_bounded_after_they_are_merged(ready):
    shop, mug = ready
    status, answer = shop.bus.call("order", "POST", "/orders", user="u-1", body={
        **ORDER, "items": [{"productId": mug, "quantity": 600}, {"productId": mug, "quantity": 600}]})
    assert status == 422 and "at most 1000 units" in json.dumps(answer), answer


def test_idempotency_key_answers_a_repeat_with_the_first_response_and_refuses_another_body(ready):
    shop, mug = ready
    body = {**ORDER, "items": [{"productId": mug, "quantity": 1}]}
    key = {"idempotency-key": "order-attempt-1"}
    first = _invoke(shop.bus, "order", "POST", "/orders", headers=key, body=body)
    again = _invoke(shop.bus, "order", "POST", "/orders", headers=key, body=body)
    assert first["statusCode"] == again["statusCode"] == 202
    assert json.loads(first["body"]) == json.loads(again["body"])
    assert again["headers"].get("Idempotent-Replayed") == "true"
    assert len([o for o in scan("order") if o["sk"] == "STATE"]) == 1
    other = _invoke(shop.bus, "order", "POST", "/orders", headers=key,
                    body={**body, "items": [{"productId": mug, "quantity": 2}]})
    assert other["statusCode"] == 422 and "used for another request (POST /orders)" in other["body"]
    # another caller's key space is their own
    assert _invoke(shop.bus, "order", "POST", "/orders", headers=key, body=body, user="u-2")["statusCode"] == 202
    assert _invoke(shop.bus, "order", "POST", "/orders", headers={"idempotency-key": "bad key!"},
                   body=body)["statusCode"] == 422


def test_a_refused_request_is_not_remembered_under_its_key(ready):
    shop, mug = ready
    key = {"idempotency-key": "adj-1"}
    path = f"/inventory/{mug}/adjustments"
    refused = _invoke(shop.bus, "inventory", "POST", path, headers=key, user=ADMIN, admin=True,
                      body={"delta": -1000, "reason": "too many"})
    assert refused["statusCode"] == 409
    fixed = _invoke(shop.bus, "inventory", "POST", path, headers=key, user=ADMIN, admin=True,
                    body={"delta": 5, "reason": "count"})
    repeat = _invoke(shop.bus, "inventory", "POST", path, headers=key, user=ADMIN, admin=True,
                     body={"delta": 5, "reason": "count"})
    assert fixed["statusCode"] == repeat["statusCode"] == 200
    assert json.loads(repeat["body"])["available"] == 15  # applied once


def test_a_create_retried_after_its_response_was_lost_finds_what_it_created(ready):
    """The key's record expired in progress (the function crashed after writing): the order's id comes
    from the key, so the retry finds that order instead of placing a second one."""
    from shopstream.request import Caller

    shop, mug = ready
    first = Caller(user_id="u-1", groups=frozenset(), correlation_id="c1", idempotency_key="k-7")
    again = Caller(user_id="u-1", groups=frozenset(), correlation_id="c2", idempotency_key="k-7")
    assert first.derived_id("o_") == again.derived_id("o_")
    assert Caller(user_id="u-2", groups=frozenset(), correlation_id="c", idempotency_key="k-7").derived_id(
        "o_") != first.derived_id("o_")
    body = {**ORDER, "items": [{"productId": mug, "quantity": 1}]}
    response = _invoke(shop.bus, "order", "POST", "/orders", headers={"idempotency-key": "k-7"}, body=body)
    import boto3

    from local import naming

    boto3.client("dynamodb").delete_item(  # as if its record had never completed
        TableName=naming.idempotency_table("order"),
        Key={"id": {"S": boto3.client("dynamodb").scan(TableName=naming.idempotency_table("order"))
                    ["Items"][0]["id"]["S"]}})
    retried = _invoke(shop.bus, "order", "POST", "/orders", headers={"idempotency-key": "k-7"}, body=body)
    assert retried["statusCode"] == 202
    assert json.loads(retried["body"])["orderId"] == json.loads(response["body"])["orderId"]
    assert len([o for o in scan("order") if o["sk"] == "STATE"]) == 1


def test_every_status_the_api_answers_is_in_the_openapi_document():
    document = openapi_document()
    place = document["paths"]["/orders"]["post"]
    assert {"202", "400", "401", "404", "409", "413", "415", "422", "429"} <= set(place["responses"])
    assert "403" not in place["responses"]  # anyone with a token may place an order
    assert "403" in document["paths"]["/products"]["post"]["responses"]  # admin only (catalog.RouteSpec)
    assert any(p["name"] == "Idempotency-Key" for p in place["parameters"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"401", "404", "422", "429"} <= set(operation["responses"]), (method, path)
            assert any(p["name"] == "X-Correlation-Id" for p in operation["parameters"]), (method, path)
            for status, response in operation["responses"].items():  # every answer of the function is traced
                assert ("traceresponse" in response["headers"]) == (status != "429"), (method, path, status)
    order = document["paths"]["/orders/{orderId}"]["get"]["responses"]["200"]["headers"]
    assert {"X-Trace-Id", "X-Wait-Outcome", "traceresponse"} <= set(order), order


# --- refusals at the edge never end in a 500, and each is audited ------------------------------------
MUTATING_ROUTES = [(s.name, r) for s in catalog.SERVICES for r in s.routes if r.method in ("POST", "PUT", "PATCH")]


def _audits(bus, correlation_id: str) -> list[dict]:
    bus.pump()
    return [e["data"] for e in bus.events("audit-events") if e["correlationId"] == correlation_id]


def test_a_path_id_one_over_its_bound_is_refused_and_the_refusal_audited(ready):
    import re

    shop, _ = ready
    for n, (service, route) in enumerate((s, r) for s, r in MUTATING_ROUTES if "{" in r.path):
        path = re.sub(r"\{[^/]+\}", "i" * 129, route.path)
        response = _invoke(shop.bus, service, route.method, path, user=ADMIN, admin=True, body={},
                           headers={"x-correlation-id": f"corr-long-id-{n}"})
        assert response["statusCode"] == 422, (route, response)
        [audit] = _audits(shop.bus, f"corr-long-id-{n}")
        assert audit["outcome"] == "rejected" and audit["statusCode"] == 422, (route, audit)
        assert audit["action"] == f"{route.method} {route.path}" and len(audit["resource"]) <= 300


@pytest.mark.parametrize("header, value", [("x-session-id", "s" * 129), ("x-session-id", "has space"),
                                           ("idempotency-key", "k" * 256)])
def test_a_header_off_its_bound_is_a_422_naming_it_and_the_refusal_is_audited(ready, header, value):
    shop, mug = ready
    named = f"header.{'X-Session-Id' if header == 'x-session-id' else 'Idempotency-Key'}"
    for n, (service, route) in enumerate(MUTATING_ROUTES):
        path = route.path.replace("{", "").replace("}", "")
        response = _invoke(shop.bus, service, route.method, path, user=ADMIN, admin=True, body={},
                           headers={header: value, "x-correlation-id": f"corr-long-header-{n}"})
        assert response["statusCode"] == 422, (route, response)
        assert [e["field"] for e in json.loads(response["body"])["errors"]] == [named], (route, response)
        [audit] = _audits(shop.bus, f"corr-long-header-{n}")
        assert audit["outcome"] == "rejected" and audit["statusCode"] == 422, (route, audit)


def test_a_session_id_within_its_bound_travels_in_the_events_metadata(ready):
    shop, mug = ready
    response = _invoke(shop.bus, "cart", "POST", "/carts", headers={"x-session-id": "s" * 128},
                       body={"items": [{"productId": mug, "quantity": 1}]})
    assert response["statusCode"] == 201, response
    shop.bus.pump()
    [created] = [e for e in shop.bus.events("cart-events") if e["eventType"] == "CartCreated"]
    assert created["metadata"]["sessionId"] == "s" * 128


def test_an_id_at_its_bound_is_served_and_audited_by_its_route():
    """128 characters are a valid id: the audit record names the route's template (bounded), so a long
    id cannot make the record of a served request fail."""
    from shopstream.request import Caller, Request, audit_event

    path = "/shipments/" + "s" * 128 + "/dispatch"
    request = Request(service="shipping", method="POST", path=path, route="/shipments/{shipmentId}/dispatch",
                      caller=Caller(user_id="u" * 128, groups=frozenset(), correlation_id="c"))
    record = audit_event(request, "success", 200).data
    assert record["action"] == "POST /shipments/{shipmentId}/dispatch" and record["resource"] == path
    unrouted = Request(service="shipping", method="POST", path="/" + "z" * 400, caller=request.caller)
    bounded = audit_event(unrouted, "rejected", 404).data
    assert len(bounded["action"]) <= 100 and len(bounded["resource"]) == 300 and bounded["resource"].startswith("/z")
