"""An event is declared once, on its model (shopstream.declarations); the catalog's table and the events package's
index are derived from the declarations by `make generate` (tools/event_index.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import Field

from local.samples import sample_data
from shopstream import catalog, declarations, events
from shopstream.envelope import WireModel, event_from_command
from shopstream.events import model_of
from tools import event_index


@pytest.fixture
def declared(monkeypatch):
    """Declarations made by a test are forgotten after it."""
    monkeypatch.setattr(declarations, "_DECLARED", dict(declarations._DECLARED))


def test_the_catalog_is_what_the_models_declare():
    declared = event_index.declarations_in_catalog_order()  # imports every topic's module
    rows = [(d.name, d.version, d.topic, d.key_field, d.model_name) for d in declared]
    assert rows == [(e.name, e.version, e.topic, e.key_field, e.model_name) for e in catalog.EVENTS]
    for spec in catalog.EVENTS:
        assert declarations.declaration_of(model_of(spec)).version == spec.version


def test_a_model_not_declared_has_no_version():
    with pytest.raises(KeyError, match="OrderCreated is not an event version"):
        declarations.declaration_of(events.OrderCreated)  # what every version says: not itself a version
    assert declarations.declaration_of(events.OrderCreatedV2).version == "v2"


def test_an_event_envelope_takes_the_version_its_model_declares():
    data = model_of(catalog.latest("OrderCreated")).model_validate(sample_data("OrderCreated", "v2"))
    envelope = event_from_command(event_type="OrderCreated", data=data, service="order", correlation_id="c-1")
    assert envelope.event_version == "v2"


def test_a_new_declaration_reaches_the_table_and_the_index(declared):
    order_event = declarations.TopicEvents("order-events", key="orderId")

    @order_event
    class OrderGiftWrapped(WireModel):
        __module__ = "shopstream.events.order"  # where it would be declared
        order_id: str = Field(min_length=1)

    table = event_index.event_table_source()
    assert '("OrderGiftWrapped", "v1", "order-events", "orderId", "order", "OrderGiftWrapped"),' in table
    # after the order's other events, before payment-events'
    assert table.index("OrderGiftWrapped") < table.index('"PaymentInitiated"')
    assert table.index("OrderGiftWrapped") > table.index('"OrderCancellationRequested"')


def test_a_model_is_declared_once(declared):
    order_event = declarations.TopicEvents("order-events", key="orderId")

    class Twice(WireModel):
        order_id: str

    order_event(Twice)
    with pytest.raises(TypeError, match="declared twice"):
        order_event.version(2, of="Twice")(Twice)


def test_a_declaration_on_a_topic_the_catalog_lacks_is_refused(declared):
    declarations.TopicEvents("gift-events", key="orderId")(type("Gift", (WireModel,), {"__annotations__": {}}))
    with pytest.raises(SystemExit, match="gift-events"):
        event_index.event_table_source()


def test_every_event_version_gives_a_valid_example():
    for spec in catalog.EVENTS:
        model = model_of(spec)
        example = events.example_of(spec)  # KeyError: the model gives none
        assert model.model_validate(example) == model.model_validate_json(json.dumps(example)), spec.ref
