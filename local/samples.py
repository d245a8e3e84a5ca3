"""Events and MSK-shaped records built from the catalog: each event version's sample is its model's example
(shopstream.events.example_of). For the tests and the benches alike."""

from __future__ import annotations

import itertools
from typing import Any

from shopstream import catalog
from shopstream.envelope import EventEnvelope, event_from_command
from shopstream.events import example_of
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


def sample_data(event_type: str, version: str = "v1") -> dict[str, Any]:
    """A valid ``data`` of the event version: its model's example."""
    return example_of(catalog.event(event_type, version))


def sample_event(event_type: str, version: str = "v1", *, service: str | None = None,
                 correlation_id: str = "corr-1") -> EventEnvelope:
    catalog.event(event_type, version)  # KeyError: not an event version of the catalog
    producer = service or (catalog.producers_of(event_type) or ("audit",))[0]
    return event_from_command(event_type=event_type, event_version=version, data=sample_data(event_type, version),
                              service=producer, correlation_id=correlation_id, user_id="u-1")
