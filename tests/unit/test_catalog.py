"""The catalog is the single source of truth: it must match the requirement and be consistent."""

from __future__ import annotations

from typing import TypedDict, Unpack

import pytest

from shopstream import catalog
from shopstream.events import model_of

# The architecture decision record's topic table (+ cart-events, which its events need).
ADR_TOPICS = {
    "user-events": (12, 30),
    "catalog-events": (8, 90),
    "inventory-events": (16, 7),
    "order-events": (20, 365),
    "payment-events": (12, 7 * 365),
    "shipping-events": (8, 365),
    "notification-events": (4, 30),
    "audit-events": (4, 7 * 365),
}
ADR_EVENTS = {
    "user-events": {"UserRegistered", "UserUpdated", "UserDeactivated"},
    "catalog-events": {"ProductCreated", "ProductUpdated", "ProductDiscontinued"},
    "inventory-events": {"InventoryAdjusted", "InventoryReserved", "InventoryReleased"},
    "cart-events": {"CartCreated", "CartUpdated", "CartAbandoned"},
    "order-events": {"OrderCreated", "OrderConfirmed", "OrderCancelled", "OrderShipped"},
    "payment-events": {"PaymentInitiated", "PaymentProcessed", "PaymentFailed", "PaymentRefunded"},
    "shipping-events": {"ShippingCreated", "ShippingDispatched", "ShippingDelivered"},
    "notification-events": {"NotificationSent", "NotificationFailed"},
}
ADDITIONS = {"InventoryReservationFailed": "inventory-events", "AuditRecorded": "audit-events",
             # cancel vs dispatch: the customer asks, shipping (which holds the parcel) answers
             "OrderCancellationRequested": "order-events", "ShippingCancelled": "shipping-events",
             # complex event processing (issue 14): the audit service's alerts
             "FraudSuspected": "analytics-events", "StockOutPredicted": "analytics-events",
             "PaymentFailureSpike": "analytics-events",
             # erasure (issue 15): the other services drop or pseudonymise what they keep of the customer
             "UserErased": "user-events",
             # authorised beside the reservation, then captured (PaymentProcessed) or released (issue 24)
             "PaymentAuthorised": "payment-events", "PaymentVoided": "payment-events"}
# Event types with a later version (issue 15: personal fields sealed, or dropped where nobody needs them).
VERSIONS = {"UserRegistered": ("v1", "v2"), "UserUpdated": ("v1", "v2"), "OrderCreated": ("v1", "v2"),
            "ShippingCreated": ("v1", "v2")}


def test_topics_match_the_adr_table_plus_cart_events():
    actual = {t.name: (t.partitions, t.retention.days) for t in catalog.TOPICS}
    assert actual == {**ADR_TOPICS, "cart-events": (12, 30), "analytics-events": (4, 30)}
    assert catalog.topic("payment-events").retention_ms == 7 * 365 * 24 * 3600 * 1000


def test_every_adr_event_exists_on_its_topic_and_the_additions_too():
    """New events need no entry here: an event is declared on its model alone (shopstream.declarations)."""
    adr_names = {name for names in ADR_EVENTS.values() for name in names}
    assert len(adr_names) == 25
    actual = {(e.name, e.topic) for e in catalog.EVENTS}
    expected = {(n, t) for t, names in ADR_EVENTS.items() for n in names} | set(ADDITIONS.items())
    assert expected <= actual
    versions: dict[str, tuple[str, ...]] = {}
    for e in catalog.EVENTS:
        versions[e.name] = (*versions.get(e.name, ()), e.version)
    assert {n: v for n, v in versions.items() if n in VERSIONS} == VERSIONS
    assert all(v == tuple(f"v{i}" for i in range(1, len(v) + 1)) for v in versions.values())  # v1, v2, ... in order
    assert all(catalog.latest(n).version == v[-1] for n, v in versions.items())


def test_every_key_field_is_a_required_field_of_its_model():
    for e in catalog.EVENTS:
        schema = model_of(e).model_json_schema(by_alias=True)
        assert e.key_field in schema.get("required", []), e.name


def test_every_event_has_a_producer_and_every_subscription_is_consistent():
    for e in catalog.EVENTS:
        assert catalog.producers_of(e.name), f"nobody produces {e.name}"
    for s in catalog.SERVICES:
        for h in s.handlers:
            assert h.event_types, f"{s.name}.{h.name} takes nothing"
            for name in h.event_types:
                assert catalog.event(name).topic == h.topic, f"{s.name}.{h.name}: {name} is not on {h.topic}"


def test_the_nine_services_with_unique_handlers_and_consumer_groups():
    assert [s.name for s in catalog.SERVICES] == [
        "user", "catalog", "inventory", "cart", "order", "payment", "shipping", "notification", "audit"]
    groups = [catalog.consumer_group_id(s.name, h.name) for s in catalog.SERVICES for h in s.handlers]
    assert len(groups) == len(set(groups))
    for s in catalog.SERVICES:
        entries = [h.entry for h in s.handlers] + [x.entry for x in s.schedules]
        assert len(entries) == len(set(entries)), s.name


def test_audit_consumes_every_event_of_every_topic():
    audited = {n for h in catalog.service("audit").handlers if h.name.startswith("trail-") for n in h.event_types}
    assert audited == {e.name for e in catalog.EVENTS}


def test_function_environment_is_derived_from_the_specs():
    spec = catalog.service("inventory")
    handler = spec.handler("order-reservations")
    env = catalog.function_environment(spec, environment="dev", table_name="t", idempotency_table_name="i",
                                       bootstrap_servers="b:9098", kafka_auth="iam", handler=handler, dlq_url="q")
    assert env["SHOPSTREAM_HANDLER"] == "order-reservations"
    assert env["POWERTOOLS_SERVICE_NAME"] == "inventory"
    assert env["SHOPSTREAM_DLQ_URL"] == "q"
    assert env["SHOPSTREAM_KAFKA_AUTH"] == "iam"
    assert catalog.service("order").produces_topics == ("audit-events", "order-events")
    assert "SHOPSTREAM_CUSTOMER_KEYS_TABLE" not in env


class _Resources(TypedDict, total=False):
    """Resources a function's environment can name (function_environment's keywords), each given or not."""

    request_fingerprint_key: str
    customer_keys_table: str
    customer_data_key: str
    user_pool_id: str


def _environment_of(service: str, handler: str | None = None, *, api: bool = False,
                    **given: Unpack[_Resources]) -> dict[str, str]:
    """A function's environment as the stacks and the local runtime build it, with ``given`` resources."""
    spec = catalog.service(service)
    return catalog.function_environment(
        spec, environment="dev", table_name="t", idempotency_table_name="i", bootstrap_servers="b",
        kafka_auth="iam", handler=spec.handler(handler) if handler else None, api=api, **given)


def test_only_apis_with_a_creating_route_are_told_which_key_fingerprints_request_bodies():
    def env(service, handler=None, api=False):
        return _environment_of(service, handler, api=api, request_fingerprint_key="hmac")

    told = {s.name for s in catalog.SERVICES if env(s.name, api=True).get("SHOPSTREAM_REQUEST_FINGERPRINT_KEY")}
    assert told == {"user", "catalog", "inventory", "cart", "order"}
    assert "SHOPSTREAM_REQUEST_FINGERPRINT_KEY" not in env("order")  # the relay
    assert "SHOPSTREAM_REQUEST_FINGERPRINT_KEY" not in env("inventory", "order-reservations")


def test_only_functions_that_read_or_seal_personal_data_are_told_where_the_keys_are():
    def env(service, handler=None, api=False):
        return _environment_of(service, handler, api=api, customer_keys_table="keys", customer_data_key="cmk",
                               user_pool_id="pool")

    opens = env("notification", "order-notices")
    assert (opens["SHOPSTREAM_CUSTOMER_KEYS_TABLE"], opens["SHOPSTREAM_CUSTOMER_DATA_KEY"]) == ("keys", "cmk")
    seals = env("shipping", "order-fulfilment")  # seals a v1 address on arrival; opens nothing
    assert seals["SHOPSTREAM_CUSTOMER_KEYS_TABLE"] == "keys" and "SHOPSTREAM_CUSTOMER_DATA_KEY" not in seals
    for service, handler in (("payment", "order-payments"), ("inventory", "order-reservations"),
                             ("audit", "trail-user"), ("notification", "alert-notices")):
        assert "SHOPSTREAM_CUSTOMER_KEYS_TABLE" not in env(service, handler), (service, handler)
    user_api = env("user", api=True)
    assert user_api["SHOPSTREAM_CUSTOMER_DATA_KEY"] == "cmk" and user_api["SHOPSTREAM_USER_POOL_ID"] == "pool"
    assert "SHOPSTREAM_CUSTOMER_KEYS_TABLE" not in env("user")  # the user service's relay
    assert "SHOPSTREAM_USER_POOL_ID" not in env("order", api=True)
    assert all(need in catalog.NEEDS for s in catalog.SERVICES
               for need in (*s.api_needs, *(n for h in s.handlers for n in h.needs)))


def test_the_critical_path_is_the_handlers_between_post_orders_and_confirmed():
    """POST /orders -> OrderCreated -> the reservation and the authorisation side by side -> InventoryReserved
    and PaymentAuthorised, whichever comes last -> CONFIRMED: exactly these handlers wait for no batch
    (docs/capacity.md). The capture after the reservation is off that path."""
    critical = {f"{s.name}.{h.name}" for s in catalog.SERVICES for h in s.handlers if h.critical_path}
    assert critical == {"inventory.order-reservations", "payment.order-payments", "order.inventory-outcomes",
                        "order.payment-outcomes"}
    chain = [("OrderCreated", "inventory.order-reservations"), ("OrderCreated", "payment.order-payments"),
             ("InventoryReserved", "order.inventory-outcomes"), ("PaymentAuthorised", "order.payment-outcomes")]
    for event_name, handler in chain:
        assert handler in catalog.consumers_of(event_name)
    assert all(h.max_batching_window_seconds == 0 for s in catalog.SERVICES for h in s.handlers if h.critical_path)


def test_a_critical_path_handler_with_a_batching_window_is_refused():
    with pytest.raises(ValueError, match="window 0"):
        catalog.HandlerSpec("h", "order-events", ("OrderCreated",), "h", critical_path=True)
