"""docs/asyncapi.yaml (tools/asyncapi.py): the catalog's topics, events, services and handlers as an AsyncAPI 3.0
document, generated and held to the code; valid for the official parser (tools/validate_asyncapi.mjs); rendered by
the console."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from local import naming
from shopstream import catalog, wire
from shopstream.envelope import EventEnvelope
from shopstream.events import model_of
from shopstream.schemas import SCHEMA_DIALECT, schema_file_name
from tools import asyncapi, generate

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "tools" / "validate_asyncapi.mjs"


@pytest.fixture(scope="module")
def doc() -> dict:
    return asyncapi.load()


@pytest.fixture(scope="module")
def prod():
    from stacks.config import load

    return load(json.loads((ROOT / "cdk.json").read_text())["context"]["environments"], asyncapi.FIGURES_FROM)


def _refs(operation: dict) -> list[str]:
    return [m["$ref"] for m in operation["messages"]]


def _message_ref(spec: catalog.EventSpec) -> str:
    return f"#/channels/{spec.topic}/messages/{asyncapi.message_id(spec)}"


# --- generated, and held to the code ----------------------------------------------------------------------------
def test_the_committed_document_is_the_generated_one():
    assert asyncapi.ASYNCAPI_DOC.read_text() == asyncapi.yaml_text()


def test_the_check_reports_a_document_that_drifted(tmp_path, monkeypatch):
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(asyncapi.ASYNCAPI_DOC.read_text().replace("replicas: 3", "replicas: 4", 1))
    monkeypatch.setattr(generate, "ASYNCAPI_DOC", stale)
    assert "docs/asyncapi.yaml: out of date (run `make generate`)" in generate.check()
    monkeypatch.setattr(generate, "ASYNCAPI_DOC", tmp_path / "missing.yaml")
    assert "docs/asyncapi.yaml: out of date (run `make generate`)" in generate.check()


def test_every_topic_is_a_channel_with_its_kafka_binding(doc, prod):
    assert list(doc["channels"]) == [t.name for t in catalog.TOPICS]
    for topic in catalog.TOPICS:
        channel = doc["channels"][topic.name]
        kafka = channel["bindings"]["kafka"]
        assert channel["address"] == kafka["topic"] == topic.name
        assert kafka["partitions"] == prod.partition_count(topic.name)
        assert kafka["replicas"] == prod.replication_factor
        assert kafka["topicConfiguration"]["retention.ms"] == topic.retention_ms
        assert kafka["topicConfiguration"]["cleanup.policy"] == ["delete"]
        assert f"prod {prod.partition_count(topic.name)}" in channel["description"]
        assert f"local {naming.dev_partitions()[topic.name]}" in channel["description"]  # make local creates dev's
        assert set(channel["messages"]) == {asyncapi.message_id(e) for e in catalog.EVENTS if e.topic == topic.name}


def test_every_event_version_is_a_message_with_its_key(doc):
    messages = doc["components"]["messages"]
    assert list(messages) == [asyncapi.message_id(e) for e in catalog.EVENTS]
    for spec in catalog.EVENTS:
        message = messages[asyncapi.message_id(spec)]
        assert message["name"] == spec.name
        assert message["bindings"]["kafka"]["key"]["x-key-field"] == f"data.{spec.key_field}"
        assert message["headers"]["properties"][wire.HEADER_EVENT_TYPE]["const"] == spec.name
        assert message["headers"]["properties"][wire.HEADER_EVENT_VERSION]["const"] == spec.version


def test_every_payload_is_the_schema_the_compatibility_gate_checks(doc):
    """The payload refers to the committed schemas/ file, which is what the code generates (the gate's input)."""
    assert SCHEMA_DIALECT == "http://json-schema.org/draft-07/schema#"  # what the payloads' schemaFormat says
    generated = generate.all_schemas()
    for spec in catalog.EVENTS:
        payload = doc["components"]["messages"][asyncapi.message_id(spec)]["payload"]
        assert payload["schemaFormat"] == asyncapi.SCHEMA_FORMAT
        referenced = (asyncapi.ASYNCAPI_DOC.parent / payload["schema"]["$ref"]).resolve()
        assert referenced == (generate.SCHEMAS_DIR / schema_file_name(spec.name, spec.version)).resolve()
        assert json.loads(referenced.read_text()) == json.loads(generate.dump(generated[referenced.name]))


def test_every_example_is_a_valid_record_of_its_event(doc):
    for spec in catalog.EVENTS:
        message = doc["components"]["messages"][asyncapi.message_id(spec)]
        (example,) = message["examples"]
        schema = json.loads((asyncapi.ASYNCAPI_DOC.parent / message["payload"]["schema"]["$ref"]).read_text())
        jsonschema.validate(example["payload"], schema)
        jsonschema.validate(example["headers"], message["headers"])
        envelope = EventEnvelope.model_validate(example["payload"])
        model_of(spec).model_validate(envelope.data)
        record = wire.to_record(envelope)
        assert {name: value.decode() for name, value in record.headers} == example["headers"]
        assert record.topic == spec.topic and record.key in example["summary"]


def test_every_handler_receives_with_its_consumer_group(doc):
    receives = {k: v for k, v in doc["operations"].items() if v["action"] == "receive"}
    expected = {asyncapi.receive_operation_id(s.name, h.name): (s, h) for s in catalog.SERVICES for h in s.handlers}
    assert set(receives) == set(expected)
    for op_id, (service, handler) in expected.items():
        operation = receives[op_id]
        assert operation["channel"] == {"$ref": f"#/channels/{handler.topic}"}
        group = operation["bindings"]["kafka"]["groupId"]
        assert group == {"type": "string", "enum": [catalog.consumer_group_id(service.name, handler.name)]}
        # every version of every event type it handles
        assert _refs(operation) == [_message_ref(e) for e in catalog.EVENTS
                                    if e.topic == handler.topic and e.name in handler.event_types]
        assert {e.name for e in catalog.EVENTS if _message_ref(e) in _refs(operation)} == set(handler.event_types)


def test_every_service_sends_the_newest_version_of_what_it_publishes(doc):
    sends = {k: v for k, v in doc["operations"].items() if v["action"] == "send"}
    sent: dict[str, set[str]] = {}
    for op_id, operation in sends.items():
        service, _, topic = op_id.split(".", 2)
        assert operation["channel"] == {"$ref": f"#/channels/{topic}"}
        assert all(ref.startswith(f"#/channels/{topic}/messages/") for ref in _refs(operation))
        sent.setdefault(service, set()).update(_refs(operation))
    assert sent == {s.name: {_message_ref(catalog.latest(name)) for name in s.publishes}
                    for s in catalog.SERVICES if s.publishes}


def test_the_servers_are_make_locals_broker_and_msk_with_iam(doc, monkeypatch):
    from local.stack import from_environment
    from stacks.network import MSK_IAM_TLS_PORT

    monkeypatch.delenv("SHOPSTREAM_LOCAL_KAFKA_PORT", raising=False)
    local = doc["servers"]["local"]
    assert (local["protocol"], local["host"]) == ("kafka", "127.0.0.1:{port}")
    assert local["variables"]["port"]["default"] == str(from_environment().kafka_port)
    msk = doc["servers"]["msk"]
    assert (msk["protocol"], msk["host"]) == ("kafka-secure", f"{{broker}}:{MSK_IAM_TLS_PORT}")
    assert msk["security"] == [{"$ref": "#/components/securitySchemes/mskIam"}]
    scheme = doc["components"]["securitySchemes"]["mskIam"]
    assert scheme["x-sasl-mechanism"] == "OAUTHBEARER" and scheme["x-security-protocol"] == "SASL_SSL"


# --- the official parser --------------------------------------------------------------------------------------
def _validator_or_skip() -> None:
    missing = [why for why, ok in (("no node", shutil.which("node")),
                                   ("no node_modules/@asyncapi/parser (make node)",
                                    (ROOT / "node_modules" / "@asyncapi" / "parser").exists())) if not ok]
    if missing:
        if os.environ.get("CI"):
            pytest.fail("the AsyncAPI parser cannot run: " + "; ".join(missing) + " (CI must run it)")
        pytest.skip("the AsyncAPI parser cannot run: " + "; ".join(missing))


def validate(*paths: Path) -> tuple[int, dict[str, list[str]]]:
    """The validator's exit status and, per document, its diagnostics with its summary last."""
    _validator_or_skip()
    result = subprocess.run(["node", str(VALIDATOR), *map(str, paths)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.strip(), result.stderr
    reports: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in result.stdout.strip().splitlines():
        lines.append(line)
        if line.startswith("asyncapi: "):
            reports[line.removeprefix("asyncapi: ").rsplit(": ", 1)[0]] = lines
            lines = []
    assert not lines and set(reports) == {str(p) for p in paths}, result.stdout
    return result.returncode, reports


def test_the_official_parser_finds_no_error_nor_warning():
    returncode, reports = validate(asyncapi.ASYNCAPI_DOC)
    (lines,) = reports.values()
    assert returncode == 0, "\n".join(lines)
    assert lines[-1].endswith(": 0 errors, 0 warnings, 1 infos, 0 hints"), "\n".join(lines)
    # the one info: AsyncAPI 3.1.0 exists (the document says 3.0.0, as asked of it)
    assert [line.split()[1] for line in lines[:-1]] == ["asyncapi-latest-version"]


BROKEN = {  # how a document is broken -> the parser's rule that must report it as an error
    "a message of another channel": "asyncapi3-operation-messages-from-referred-channel",
    "a missing channel": "invalid-ref",
    "a missing schema file": "invalid-ref",
    "an invalid schema": "asyncapi-document-resolved",
}


def _broken(doc: dict, how: str) -> dict:
    reservations = doc["operations"][asyncapi.receive_operation_id("inventory", "order-reservations")]
    order_created = doc["components"]["messages"]["OrderCreated.v2"]
    if how == "a message of another channel":
        reservations["messages"].append({"$ref": "#/channels/payment-events/messages/PaymentFailed.v1"})
    elif how == "a missing channel":
        reservations["channel"] = {"$ref": "#/channels/no-such-events"}
    elif how == "a missing schema file":
        order_created["payload"]["schema"]["$ref"] = "../schemas/Nope.v1.json"
    elif how == "an invalid schema":
        order_created["payload"]["schema"] = {"type": "text"}
    return doc


def test_the_check_fails_on_a_broken_document(tmp_path):
    (tmp_path / "schemas").symlink_to(generate.SCHEMAS_DIR)  # the payloads' ../schemas/ references
    paths = {}
    for n, how in enumerate(BROKEN):
        paths[how] = tmp_path / f"docs-{n}" / "asyncapi.yaml"
        paths[how].parent.mkdir()
        paths[how].write_text(yaml.safe_dump(_broken(asyncapi.load(), how), sort_keys=False))
    returncode, reports = validate(*paths.values())
    assert returncode == 1
    for how, rule in BROKEN.items():
        lines = reports[str(paths[how])]
        errors = [line for line in lines if line.startswith("error ")]
        assert any(line.split()[1] == rule for line in errors), f"{how}:\n" + "\n".join(lines)
        assert " 0 errors" not in lines[-1]


# --- the console's rendering ----------------------------------------------------------------------------------
def test_the_console_serves_the_document_as_a_page():
    from local.console import Console

    console = Console(bootstrap="127.0.0.1:1", invoke_api=lambda service, event: {}, token="t")
    headers = {"Authorization": "Bearer t", "Host": "127.0.0.1:8000"}
    status, body, extra = console("GET", "/console/asyncapi", {}, None, headers=headers, port=8000)
    assert status == 200 and extra["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert "<script" not in page and " src=" not in page  # nothing runs, nothing is fetched
    assert {link for link in re.findall(r'href="([^"]*)"', page) if not link.startswith("#")} == {"data:,", "/console"}
    for topic in catalog.TOPICS:
        assert f'id="channel-{topic.name}"' in page
    for spec in catalog.EVENTS:
        assert f'id="message-{asyncapi.message_id(spec)}"' in page
    for service in catalog.SERVICES:
        for handler in service.handlers:
            assert f"<code>{catalog.consumer_group_id(service.name, handler.name)}</code>" in page
    assert console("GET", "/console/asyncapi", {}, None, headers={"Host": "127.0.0.1:8000"}, port=8000)[0] == 401
    index = (ROOT / "local" / "console" / "index.html").read_text()
    assert 'href="/console/asyncapi"' in index
