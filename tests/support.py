"""Builders shared by tests: envelopes for catalog events and MSK-shaped batches."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from shopstream import catalog, personal
from shopstream.envelope import EventEnvelope, event_from_command
from shopstream.wire import msk_event, msk_record, to_record

_offsets = itertools.count(100)


def product_created(product_id: str = "p-1", price: int = 1999, correlation_id: str = "corr-1") -> EventEnvelope:
    return event_from_command(
        event_type="ProductCreated",
        data={"productId": product_id, "sku": f"SKU-{product_id}", "name": "Mug",
              "price": {"amount": price, "currency": "EUR"}},
        service="catalog",
        correlation_id=correlation_id,
        user_id="admin-1",
    )


def kafka_record_of(envelope: EventEnvelope, *, partition: int = 0, offset: int | None = None) -> dict[str, Any]:
    out = to_record(envelope)
    return msk_record(
        topic=out.topic, partition=partition, offset=next(_offsets) if offset is None else offset,
        key=out.key.encode(), value=out.value, headers=list(out.headers),
    )


def raw_record(value: bytes | None, *, topic: str = "catalog-events", partition: int = 0,
               offset: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> dict[str, Any]:
    return msk_record(topic=topic, partition=partition, offset=next(_offsets) if offset is None else offset,
                      key=b"k", value=value, headers=headers or [])


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return msk_event(list(records))


def topics_by_name() -> dict[str, catalog.Topic]:
    return {t.name: t for t in catalog.TOPICS}


_EUR = {"amount": 2500, "currency": "EUR"}
_ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}
_LINE = {"productId": "p-1", "quantity": 2}
_LEVEL = {"productId": "p-1", "quantity": 10, "available": 8, "reserved": 2, "version": 3}
_PAYMENT = {"paymentId": "pay-1", "orderId": "o-1", "userId": "u-1", "amount": _EUR}

# One valid ``data`` payload per event type: the oracle for "consumers accept every version".
SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "UserRegistered": {"userId": "u-1", "email": "ada@example.com", "name": "Ada"},
    "UserUpdated": {"userId": "u-1", "name": "Ada L.", "version": 2},
    "UserDeactivated": {"userId": "u-1", "version": 3},
    "UserErased": {"userId": "u-1", "version": 4},
    "ProductCreated": {"productId": "p-1", "sku": "MUG-1", "name": "Mug", "price": _EUR},
    "ProductUpdated": {"productId": "p-1", "price": _EUR, "version": 2},
    "ProductDiscontinued": {"productId": "p-1", "version": 3},
    "InventoryAdjusted": {"productId": "p-1", "delta": 10, "reason": "restock", "level": _LEVEL},
    "InventoryReserved": {"orderId": "o-1", "lines": [_LINE], "levels": [_LEVEL]},
    "InventoryReleased": {"orderId": "o-1", "reason": "payment_declined", "lines": [_LINE], "levels": [_LEVEL]},
    "InventoryReservationFailed": {"orderId": "o-1", "reason": "out_of_stock",
                                   "shortages": [{"productId": "p-1", "requested": 2, "available": 1}]},
    "CartCreated": {"cartId": "c-1", "userId": "u-1", "items": [_LINE]},
    "CartUpdated": {"cartId": "c-1", "userId": "u-1", "items": [_LINE], "version": 2},
    "CartAbandoned": {"cartId": "c-1", "userId": "u-1", "items": [_LINE], "lastActivityAt": "2026-01-01T00:00:00Z"},
    "OrderCreated": {"orderId": "o-1", "userId": "u-1",
                     "items": [{**_LINE, "unitPrice": {"amount": 1250, "currency": "EUR"}}],
                     "total": _EUR, "paymentMethod": "pm_card_visa", "shippingAddress": _ADDRESS},
    "OrderConfirmed": {"orderId": "o-1", "userId": "u-1", "paymentId": "pay-1", "total": _EUR},
    "OrderCancelled": {"orderId": "o-1", "userId": "u-1", "reason": "customer_request",
                       "previousStatus": "PENDING", "items": [_LINE]},
    "OrderCancellationRequested": {"orderId": "o-1", "userId": "u-1", "reason": "customer_request"},
    "OrderShipped": {"orderId": "o-1", "userId": "u-1", "shipmentId": "s-1", "carrier": "An Post",
                     "trackingNumber": "T1"},
    "PaymentInitiated": {**_PAYMENT, "paymentMethod": "pm_card_visa"},
    "PaymentAuthorised": {**_PAYMENT, "authorisationReference": "pi_1"},
    "PaymentProcessed": {**_PAYMENT, "providerReference": "ch_1"},
    "PaymentFailed": {**_PAYMENT, "declineCode": "card_declined"},
    "PaymentRefunded": {**_PAYMENT, "refundReference": "re_1"},
    "PaymentVoided": {**_PAYMENT, "authorisationReference": "pi_1", "voidReference": "vo_1",
                      "reason": "stock_unavailable"},
    "ShippingCreated": {"shipmentId": "s-1", "orderId": "o-1", "userId": "u-1", "address": _ADDRESS, "items": [_LINE]},
    "ShippingDispatched": {"shipmentId": "s-1", "orderId": "o-1", "userId": "u-1", "carrier": "An Post",
                           "trackingNumber": "T1"},
    "ShippingDelivered": {"shipmentId": "s-1", "orderId": "o-1", "userId": "u-1",
                          "deliveredAt": "2026-01-02T00:00:00Z"},
    "ShippingCancelled": {"shipmentId": "s-1", "orderId": "o-1", "userId": "u-1", "reason": "customer_request"},
    "NotificationSent": {"notificationId": "n-1", "userId": "u-1", "channel": "email", "template": "order-confirmed",
                         "causeEventType": "OrderConfirmed"},
    "NotificationFailed": {"notificationId": "n-1", "userId": "u-1", "channel": "email", "template": "order-confirmed",
                           "causeEventType": "OrderConfirmed", "error": "bounced"},
    "AuditRecorded": {"actor": "u-1", "action": "POST /orders", "resource": "/orders", "outcome": "success",
                      "statusCode": 202},
    "FraudSuspected": {"alertId": "FraudSuspected-1", "userId": "u-1", "declines": 3, "windowMinutes": 10,
                       "firstDeclineAt": "2026-01-01T00:00:00Z", "lastDeclineAt": "2026-01-01T00:05:00Z",
                       "paymentIds": ["pay-1", "pay-2", "pay-3"]},
    "StockOutPredicted": {"alertId": "StockOutPredicted-1", "productId": "p-1", "available": 8,
                          "unitsPerMinute": 0.5, "minutesToStockOut": 16, "lookbackMinutes": 15,
                          "windowStart": "2026-01-01T00:00:00Z"},
    "PaymentFailureSpike": {"alertId": "PaymentFailureSpike-1", "threshold": 0.5,
                            "windowStarts": ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"],
                            "failureRates": [0.6, 0.75, 1.0], "attempts": [5, 4, 3]},
}


def sealed_sample(kind: str) -> dict[str, Any]:
    """A well-formed sealed value (shopstream.personal.Sealed) that no key opens: for schema tests."""
    return {"kid": "u-1", "kind": kind, "alg": "X25519-HKDF-SHA256-A256GCM", "epk": "A" * 43, "iv": "B" * 16,
            "ct": "C" * 40}


# The data of later versions, where it differs from SAMPLE_DATA (v1).
SAMPLE_DATA_BY_VERSION: dict[tuple[str, str], dict[str, Any]] = {
    ("UserRegistered", "v2"): {"userId": "u-1", "email": sealed_sample("email"), "name": sealed_sample("name")},
    ("UserUpdated", "v2"): {"userId": "u-1", "name": sealed_sample("name"), "version": 2},
    ("OrderCreated", "v2"): {**SAMPLE_DATA["OrderCreated"], "shippingAddress": sealed_sample("address")},
    ("ShippingCreated", "v2"): {k: v for k, v in SAMPLE_DATA["ShippingCreated"].items() if k != "address"},
}


def sample_data(event_type: str, version: str = "v1") -> dict[str, Any]:
    return SAMPLE_DATA_BY_VERSION.get((event_type, version), SAMPLE_DATA[event_type])


def sample_event(event_type: str, version: str = "v1", *, service: str | None = None,
                 correlation_id: str = "corr-1") -> EventEnvelope:
    catalog.event(event_type, version)  # KeyError: not an event version of the catalog
    producer = service or (catalog.producers_of(event_type) or ("audit",))[0]
    return event_from_command(event_type=event_type, event_version=version, data=sample_data(event_type, version),
                              service=producer, correlation_id=correlation_id, user_id="u-1")


# --- the strongest reader of personal data (erasure tests) -----------------------------------------------
_B64 = re.compile(r"^[A-Za-z0-9+/_-]{16,}={0,2}$")


def readable_texts(value: Any, *, open_sealed: bool = True, depth: int = 0) -> Iterator[str]:
    """Every text reachable from ``value``: JSON and base64 decoded, sealed values opened where a key exists."""
    if depth > 14:
        return
    if isinstance(value, bytes | bytearray):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return
        yield from readable_texts(text, open_sealed=open_sealed, depth=depth + 1)
    elif isinstance(value, str):
        yield value
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:  # JSON Lines (an archive object), or not JSON
                lines = text.splitlines()
                if len(lines) > 1:
                    for line in lines:
                        yield from readable_texts(line, open_sealed=open_sealed, depth=depth + 1)
                return
            yield from readable_texts(parsed, open_sealed=open_sealed, depth=depth + 1)
        elif _B64.match(text):
            try:
                decoded = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in
                                           text else None)
            except (binascii.Error, ValueError):
                return
            yield from readable_texts(decoded, open_sealed=open_sealed, depth=depth + 1)
    elif isinstance(value, dict):
        if open_sealed and personal.is_sealed(value):
            opened = None
            try:
                opened = json.dumps(personal.unseal(value, value["kind"]), ensure_ascii=False)
            except personal.Unreadable:
                opened = None  # the key is gone: nothing readable
            yield from readable_texts(opened, open_sealed=open_sealed, depth=depth + 1)
        for inner in value.values():
            yield from readable_texts(inner, open_sealed=open_sealed, depth=depth + 1)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from readable_texts(inner, open_sealed=open_sealed, depth=depth + 1)


def readable_traces(sources: dict[str, Any], needles: tuple[str, ...], *, open_sealed: bool = True) -> list[str]:
    """``where: needle`` for every needle readable in each source (case-insensitive). Sealed values are opened
    with the settings in force (a reader with the key store and kms:Decrypt)."""
    found = []
    for where, value in sources.items():
        for text in readable_texts(value, open_sealed=open_sealed):
            folded = text.casefold()
            found += [f"{where}: {needle!r}" for needle in needles if needle.casefold() in folded]
    return sorted(set(found))


class FakeTime:
    """A clock that only sleeps move (long-polls' tests): ``on_sleep`` runs at each sleep with the number of
    sleeps so far (the world moving meanwhile)."""

    def __init__(self, on_sleep: Callable[[int], object] | None = None):
        self.now, self.slept, self.on_sleep = 1000.0, list[float](), on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.slept))
