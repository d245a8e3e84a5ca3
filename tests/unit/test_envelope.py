from __future__ import annotations

import json
from datetime import datetime

import pytest
from pydantic import ValidationError

from shopstream.envelope import EventEnvelope, event_from_command, event_from_event
from shopstream.events import Money, ProductCreated

ENVELOPE_FIELDS = {"eventId", "eventType", "eventVersion", "timestamp", "source", "correlationId",
                   "causationId", "data", "metadata"}


def _command_event() -> EventEnvelope:
    return event_from_command(
        event_type="ProductCreated",
        data=ProductCreated(product_id="p-1", sku="S", name="Mug", price=Money(amount=100, currency="EUR")),
        service="catalog", correlation_id="req-1", user_id="u-1", session_id="s-1")


def test_wire_form_is_exactly_the_envelope_in_camel_case():
    wire = json.loads(_command_event().model_dump_json(by_alias=True))
    assert set(wire) == ENVELOPE_FIELDS
    assert set(wire["metadata"]) == {"userId", "sessionId"}
    assert wire["source"] == "catalog-service"
    assert wire["eventVersion"] == "v1"
    assert wire["causationId"] is None
    assert wire["data"]["productId"] == "p-1" and wire["data"]["price"] == {"amount": 100, "currency": "EUR"}
    assert wire["timestamp"].endswith("Z")
    offset = datetime.fromisoformat(wire["timestamp"].replace("Z", "+00:00")).utcoffset()
    assert offset is not None and offset.total_seconds() == 0


def test_derived_event_keeps_the_correlation_and_points_to_its_cause():
    parent = _command_event()
    child = event_from_event(parent, event_type="InventoryAdjusted", service="inventory",
                             data={"productId": "p-1", "delta": 0, "reason": "new product",
                                   "level": {"productId": "p-1", "quantity": 0, "available": 0,
                                             "reserved": 0, "version": 1}})
    assert child.correlation_id == parent.correlation_id == "req-1"
    assert child.causation_id == parent.event_id
    assert child.event_id != parent.event_id
    assert child.metadata.user_id == "u-1"
    assert child.source == "inventory-service"


def test_round_trip_through_json():
    event = _command_event()
    again = EventEnvelope.model_validate_json(event.model_dump_json(by_alias=True))
    assert again == event


@pytest.mark.parametrize(
    "change, field",
    [
        ({"eventId": "not-a-uuid"}, "eventId"),
        ({"timestamp": "2026-01-01T00:00:00"}, "timestamp"),
        ({"source": "Order Service"}, "source"),
        ({"eventVersion": "1"}, "eventVersion"),
        ({"correlationId": ""}, "correlationId"),
    ],
)
def test_invalid_envelopes_name_the_field(change, field):
    wire = json.loads(_command_event().model_dump_json(by_alias=True))
    with pytest.raises(ValidationError) as err:
        EventEnvelope.model_validate({**wire, **change})
    assert field in str(err.value)
