"""The schema gate: committed schemas are current, additive changes pass, breaking ones fail."""

from __future__ import annotations

import copy
import json

import pytest

from local.samples import kafka_record_of, sample_event
from shopstream import catalog
from shopstream.consumer import parse_record
from shopstream.events import model_of
from shopstream.schemas import all_schemas, breaking_changes, compare_catalogs
from shopstream.wire import decode_msk_record
from tools import generate


def test_committed_schemas_and_event_docs_match_the_code():
    assert generate.check() == []


def test_there_is_one_schema_per_event_type_and_version():
    assert set(all_schemas()) == {f"{e.name}.{e.version}.json" for e in catalog.EVENTS}


@pytest.fixture
def product_created_schema():
    return json.loads((generate.SCHEMAS_DIR / "ProductCreated.v1.json").read_text())


def _data(schema):
    return schema["$defs"]["ProductCreated"]


def test_adding_an_optional_field_is_compatible(product_created_schema):
    new = copy.deepcopy(product_created_schema)
    _data(new)["properties"]["colour"] = {"type": "string"}
    assert breaking_changes(product_created_schema, new) == []


def test_removing_a_field_is_breaking(product_created_schema):
    new = copy.deepcopy(product_created_schema)
    del _data(new)["properties"]["sku"]
    _data(new)["required"].remove("sku")
    assert breaking_changes(product_created_schema, new) == ["$.data.sku: field removed"]


def test_a_new_required_field_is_breaking(product_created_schema):
    new = copy.deepcopy(product_created_schema)
    _data(new)["properties"]["colour"] = {"type": "string"}
    _data(new)["required"].append("colour")
    assert breaking_changes(product_created_schema, new) == ["$.data.colour: new required field"]


def test_narrowing_a_type_is_breaking(product_created_schema):
    new = copy.deepcopy(product_created_schema)
    # causationId: string or null -> string only
    new["properties"]["causationId"] = {"type": "string"}
    # amount: integer -> narrower bounds; name: shorter
    new["$defs"]["Money"]["properties"]["amount"]["minimum"] = 1
    _data(new)["properties"]["name"]["maxLength"] = 10
    problems = breaking_changes(product_created_schema, new)
    assert "$.causationId: type null no longer accepted" in problems
    assert "$.data.price.amount: minimum raised to 1" in problems
    assert "$.data.name: maxLength lowered to 10" in problems


def test_removing_an_enum_value_is_breaking():
    old = json.loads((generate.SCHEMAS_DIR / "OrderCancelled.v1.json").read_text())
    new = copy.deepcopy(old)
    reason = new["$defs"]["OrderCancelled"]["properties"]["reason"]
    reason["enum"] = [v for v in reason["enum"] if v != "timeout"]
    assert breaking_changes(old, new) == ["$.data.reason: values no longer accepted: ['timeout']"]


def test_removing_an_event_version_is_breaking():
    committed = generate.committed_schemas()
    generated = dict(committed)
    del generated["CartAbandoned.v1.json"]
    assert compare_catalogs(committed, generated) == {
        "CartAbandoned.v1.json": ["event type/version removed from the catalog"]}


def test_widening_is_compatible(product_created_schema):
    new = copy.deepcopy(product_created_schema)
    _data(new)["properties"]["name"]["maxLength"] = 500
    new["properties"]["source"].pop("pattern")
    assert breaking_changes(product_created_schema, new) == []


@pytest.mark.parametrize("spec", catalog.EVENTS, ids=lambda s: f"{s.name}.{s.version}")
def test_consumers_accept_every_catalog_version(spec):
    envelope = sample_event(spec.name, spec.version)
    record = decode_msk_record(kafka_record_of(envelope))
    inbound, body = parse_record(record, frozenset({spec.name}))
    assert inbound is not None and inbound.envelope == envelope
    assert isinstance(inbound.data, model_of(spec))
    assert body is not None and body["eventId"] == envelope.event_id


def test_every_sample_is_valid_under_its_json_schema():
    import jsonschema

    schemas = all_schemas()
    for spec in catalog.EVENTS:
        wire = json.loads(sample_event(spec.name, spec.version).model_dump_json(by_alias=True))
        assert sample_event(spec.name, spec.version).event_version == spec.version
        jsonschema.validate(wire, schemas[f"{spec.name}.{spec.version}.json"])
        assert schemas[f"{spec.name}.{spec.version}.json"]["$defs"][spec.model_name]["examples"] == [
            sample_event(spec.name, spec.version).data]  # the schema shows what the model gives as its example
