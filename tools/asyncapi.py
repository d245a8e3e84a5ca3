"""The topics' contract as an AsyncAPI 3.0 document (docs/asyncapi.yaml), generated from the catalog by
``make generate`` (tools/generate.py), and a readable HTML rendering of it (the console's ``/console/asyncapi``).

- a channel per topic, with its Kafka binding: partitions and replicas of one environment (``FIGURES_FROM``, the
  figures of every environment in the channel's description) and the topic configuration MSK is given
  (stacks/messaging.py ``topic_configs``);
- a message per event type and version: the payload is a reference to ``schemas/<Event>.<version>.json``, the very
  file the compatibility gate checks and the Glue registry holds; the key field is the Kafka binding's key; the
  headers are those the publisher writes (shopstream.wire); an example envelope built from the model's own example
  (shopstream.events.example_of), which the tests send as the event's sample;
- per service, an operation that sends (the newest version of each event it publishes, per topic) and one that
  receives per handler, whose Kafka binding names its consumer group (catalog.consumer_group_id);
- two servers: the broker of ``make local`` and the environment's MSK cluster (IAM: SASL/OAUTHBEARER on 9098).
"""

from __future__ import annotations

import json
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from shopstream import catalog, tracing, wire
from shopstream.envelope import CORRELATION_ID_PATTERN, EventEnvelope, EventMetadata, service_source
from shopstream.events import example_of, model_of
from shopstream.schemas import schema_file_name
from shopstream.wire import to_record
from stacks import config as stack_config

# stacks.messaging and stacks.network are imported where they are used: they load the CDK (jsii, ~0.7 s).

ROOT = Path(__file__).resolve().parents[1]
ASYNCAPI_DOC = ROOT / "docs" / "asyncapi.yaml"
ASYNCAPI_VERSION = "3.0.0"
TRACEPARENT_PATTERN = "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"  # version 00, what the relay writes
REDELIVERY_KINDS = ("replay", "redrive")  # wire.redelivered, outbox.republish
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_FORMAT = "application/schema+json;version=draft-07"  # shopstream.schemas.SCHEMA_DIALECT
FIGURES_FROM = "prod"  # the environment whose partitions and replicas the channels' bindings give
LOCAL_KAFKA_PORT = 9092  # local/stack.py from_environment(): SHOPSTREAM_LOCAL_KAFKA_PORT's default
LOCAL_REPLICAS = 1  # local/provision.py create_topics
EXAMPLE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EXAMPLE_NAMESPACE = uuid.UUID("6f1c7a52-3c0e-4b8e-9a55-2f5d0d6c2a10")  # the examples' ids: uuid5 of their names
HEADER = ("# The topics' contract (AsyncAPI 3.0), generated from layers/shopstream/python/shopstream/catalog.py,\n"
          "# cdk.json and schemas/ by `make generate` (tools/asyncapi.py); `make check-generated` fails when it\n"
          "# drifts. Do not edit by hand. Validated by tools/validate_asyncapi.mjs (@asyncapi/parser).\n")


def message_id(spec: catalog.EventSpec) -> str:
    return f"{spec.name}.{spec.version}"


def send_operation_id(service: str, topic: str) -> str:
    return f"{service}.send.{topic}"


def receive_operation_id(service: str, handler: str) -> str:
    return f"{service}.receive.{handler}"


def schema_ref(spec: catalog.EventSpec) -> str:
    """The payload's reference, relative to docs/asyncapi.yaml."""
    return f"../schemas/{schema_file_name(spec.name, spec.version)}"


def _environments() -> dict[str, Any]:
    environments = json.loads((ROOT / "cdk.json").read_text())["context"]["environments"]
    return {name: stack_config.load(environments, name) for name in environments}


def _plain(value: str) -> Any:
    """A topic property as the binding's schema types it (numbers and booleans are not strings there)."""
    if value.lstrip("-").isdigit():
        return int(value)
    return {"true": True, "false": False}.get(value, value)


def _channel(topic: catalog.Topic, environments: dict[str, Any]) -> dict[str, Any]:
    from stacks.messaging import topic_configs

    figures = environments[FIGURES_FROM]
    configs: dict[str, Any] = {k: _plain(v) for k, v in sorted(topic_configs(topic, figures).items())}
    configs["cleanup.policy"] = str(configs["cleanup.policy"]).split(",")
    partitions = ", ".join([f"local {environments['dev'].partition_count(topic.name)}",  # local runs create dev's
                            *(f"{n} {c.partition_count(topic.name)}" for n, c in environments.items())])
    replicas = ", ".join([f"local {LOCAL_REPLICAS}", *(f"{n} {c.replication_factor}" for n, c in environments.items())])
    key_fields = sorted({e.key_field for e in catalog.EVENTS if e.topic == topic.name})
    return {
        "address": topic.name,
        "summary": topic.description,
        "description": (f"{topic.description}. Retention {topic.retention.days} days. Keyed by "
                        f"{' or '.join(f'`data.{k}`' for k in key_fields)} (each event's binding names its key).\n\n"
                        f"Partitions by environment: {partitions}. Replicas: {replicas}. The Kafka binding gives "
                        f"{FIGURES_FROM}'s figures and the topic configuration MSK is given there "
                        "(stacks/messaging.py); `make local` creates the topic with dev's partitions and "
                        "one replica."),
        "messages": {message_id(e): {"$ref": f"#/components/messages/{message_id(e)}"}
                     for e in catalog.EVENTS if e.topic == topic.name},
        "bindings": {"kafka": {"topic": topic.name, "partitions": figures.partition_count(topic.name),
                               "replicas": figures.replication_factor, "topicConfiguration": configs,
                               "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def example_envelope(spec: catalog.EventSpec) -> dict[str, Any]:
    """A valid envelope of the event version: its model's example, through the model (as a producer writes it), in
    an envelope with fixed ids and time (the document is deterministic)."""
    data = model_of(spec).model_validate(example_of(spec)).model_dump(mode="json", by_alias=True)
    producer = (catalog.producers_of(spec.name) or ("audit",))[0]
    envelope = EventEnvelope(
        event_id=str(uuid.uuid5(EXAMPLE_NAMESPACE, f"event/{message_id(spec)}")),
        event_type=spec.name, event_version=spec.version, timestamp=EXAMPLE_TIME, source=service_source(producer),
        correlation_id=str(uuid.uuid5(EXAMPLE_NAMESPACE, f"correlation/{message_id(spec)}")),
        data=data, metadata=EventMetadata(user_id=data.get("userId", "u-1")))
    return envelope.to_wire()


def _headers_schema(spec: catalog.EventSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Kafka record headers (UTF-8 values), written by the publisher (shopstream.wire) so that "
                       "consumers filter on the type without parsing the value.",
        "required": [wire.HEADER_EVENT_TYPE, wire.HEADER_EVENT_VERSION, wire.HEADER_CORRELATION_ID],
        "properties": {
            wire.HEADER_EVENT_TYPE: {"type": "string", "const": spec.name},
            wire.HEADER_EVENT_VERSION: {"type": "string", "const": spec.version},
            wire.HEADER_CORRELATION_ID: {"type": "string", "pattern": CORRELATION_ID_PATTERN},
            tracing.TRACEPARENT: {
                "type": "string", "pattern": TRACEPARENT_PATTERN,
                "description": "W3C Trace Context of the relay's `publish` span (the event's trace, one per order: "
                               "docs/decisions.md, 2026-12-04). Written when tracing is on; a consumer's `process` "
                               "span is its child. Absent when tracing is off."},
            tracing.REDELIVERY_HEADER: {
                "type": "string", "enum": list(REDELIVERY_KINDS),
                "description": "Set only on a record a tool sent again (`make ops` replay, a DLQ or relay redrive): "
                               "its handler's span starts a new trace linked to the record's traceparent instead of "
                               "joining that trace."},
        },
    }


def _message(spec: catalog.EventSpec) -> dict[str, Any]:
    example = example_envelope(spec)
    record = to_record(EventEnvelope.model_validate(example))
    latest = catalog.latest(spec.name)
    producers = catalog.producers_of(spec.name)
    consumers = catalog.consumers_of(spec.name)
    produced = (f"Sent by: {', '.join(producers)}." if spec == latest else
                f"Sent by: none any more ({latest.version} is sent).")
    doc = model_of(spec).__dict__.get("__doc__") or ""
    description = " ".join(part for part in (
        " ".join(doc.split()), produced,
        f"Received by: {', '.join(consumers) or 'no handler'}.",
        f"Key: `data.{spec.key_field}`. JSON Schema: `schemas/{message_id(spec)}.json` (the compatibility gate's).",
    ) if part)
    return {
        "name": spec.name,
        "title": f"{spec.name} {spec.version}",
        "summary": f"{spec.name} {spec.version} on {spec.topic}, keyed by data.{spec.key_field}",
        "description": description,
        "contentType": "application/json",
        "headers": _headers_schema(spec),
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": {"$ref": schema_ref(spec)}},
        "correlationId": {"$ref": "#/components/correlationIds/correlationId"},
        "bindings": {"kafka": {
            "key": {"type": "string", "description": f"The aggregate id: the envelope's data.{spec.key_field}.",
                    "x-key-field": f"data.{spec.key_field}"},
            "bindingVersion": KAFKA_BINDING_VERSION}},
        "examples": [{
            "name": f"{spec.name}-{spec.version}",
            "summary": f"A record of {spec.name} {spec.version}, key {record.key}",
            "headers": {name: value.decode() for name, value in record.headers},
            "payload": example,
        }],
    }


def _channel_message_refs(topic: str, specs: list[catalog.EventSpec]) -> list[dict[str, str]]:
    return [{"$ref": f"#/channels/{topic}/messages/{message_id(e)}"} for e in specs]


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for service in catalog.SERVICES:
        tags = [{"name": service.name}]
        for topic in service.produces_topics:
            sent = [catalog.latest(name) for name in service.publishes if catalog.event(name).topic == topic]
            operations[send_operation_id(service.name, topic)] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{topic}"},
                "title": f"{service.name} sends to {topic}",
                "summary": f"{service.name} publishes {', '.join(e.name for e in sent)}",
                "description": ("Written in the service's table with the change that causes it (the outbox) and "
                                "published by the service's outbox relay, at least once, idempotent producer, "
                                "acks=all. The newest version of each event type is sent."),
                "tags": tags,
                "messages": _channel_message_refs(topic, sent),
            }
        for handler in service.handlers:
            received = [e for e in catalog.EVENTS if e.topic == handler.topic and e.name in handler.event_types]
            group = catalog.consumer_group_id(service.name, handler.name)
            settings = [f"batches of up to {handler.batch_size} records",
                        f"a batching window of {handler.max_batching_window_seconds} s",
                        f"{handler.retry_attempts} retries, then its dead-letter queue"]
            if handler.concurrency > 1 and not handler.ordered:
                settings.append(f"up to {handler.concurrency} records at once within a batch, in no order (not even "
                                "per key)")
            elif handler.concurrency > 1:
                settings.append(f"up to {handler.concurrency} keys at once within a batch")
            if handler.critical_path:
                settings.append("on the order's critical path (provisioned pollers)")
            operations[receive_operation_id(service.name, handler.name)] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{handler.topic}"},
                "title": f"{service.name}.{handler.name} receives from {handler.topic}",
                "summary": f"{service.name}.{handler.name} handles {', '.join(handler.event_types)}",
                "description": (f"A Lambda function behind an event source mapping (consumer group `{group}`; "
                                f"functions/{service.name}/consumers.py `{handler.entry}`): "
                                f"{', '.join(settings)}. Every version of each event type is accepted; other "
                                "event types on the topic are skipped."),
                "tags": tags,
                "messages": _channel_message_refs(handler.topic, received),
                "bindings": {"kafka": {"groupId": {"type": "string", "enum": [group]},
                                       "bindingVersion": KAFKA_BINDING_VERSION}},
            }
    return operations


def _servers(environments: dict[str, Any]) -> dict[str, Any]:
    from stacks.messaging import KAFKA_VERSION, bootstrap_servers_parameter_name
    from stacks.network import MSK_IAM_TLS_PORT

    parameters = ", ".join(f"`{bootstrap_servers_parameter_name(c)}`" for c in environments.values())
    regions = ", ".join(f"{n} {c.region}" for n, c in environments.items())
    return {
        "local": {
            "host": "127.0.0.1:{port}",
            "protocol": "kafka",
            "title": "make local",
            "description": ("The broker `make local` starts (Tansu) on the loopback interface: plaintext, no "
                            "authentication, dev's partitions, one replica. KAFKA_BOOTSTRAP_SERVERS points "
                            "the local runtime at another broker instead."),
            "variables": {"port": {"default": str(LOCAL_KAFKA_PORT),
                                   "description": "SHOPSTREAM_LOCAL_KAFKA_PORT"}},
            "tags": [{"name": "local"}],
        },
        "msk": {
            "host": f"{{broker}}:{MSK_IAM_TLS_PORT}",
            "protocol": "kafka-secure",
            "protocolVersion": KAFKA_VERSION,
            "title": "Amazon MSK (an environment's cluster)",
            "description": (f"The environment's MSK cluster (regions: {regions}), reached from its VPC only, with "
                            f"IAM access control over TLS on port {MSK_IAM_TLS_PORT}. The bootstrap brokers are in "
                            f"SSM: {parameters}. Topics exist only as the catalog declares them "
                            "(auto.create.topics.enable=false)."),
            "variables": {"broker": {"description": "a broker of the cluster (from the SSM parameter)",
                                     "examples": ["b-1.shopstream-prod.abc123.c3.kafka.eu-west-1.amazonaws.com"]}},
            "security": [{"$ref": "#/components/securitySchemes/mskIam"}],
            "tags": [{"name": "aws"}],
        },
    }


def _wrapped(node: Any) -> Any:
    """Every long description as lines of at most 110 characters (CommonMark reads them as one paragraph)."""
    if isinstance(node, list):
        return [_wrapped(item) for item in node]
    if not isinstance(node, dict):
        return node
    def wrap(text: str) -> str:
        return "\n\n".join(textwrap.fill(p, 110, break_on_hyphens=False, break_long_words=False)
                           for p in text.split("\n\n"))

    return {key: wrap(value) if key == "description" and isinstance(value, str) and len(value) > 110
            else _wrapped(value) for key, value in node.items()}


def document() -> dict[str, Any]:
    environments = _environments()
    return _wrapped({
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:shopstream:events",
        "info": {
            "title": "shopstream events",
            "version": "1.0.0",
            "description": (
                "Every Kafka topic of shopstream, the events on it and which service sends or receives them. "
                "Every record's value is the JSON envelope (`eventId`, `eventType`, `eventVersion`, `timestamp`, "
                "`source`, `correlationId`, `causationId`, `data`, `metadata{userId, sessionId}`) whose `data` "
                "the event's model types; its key is the aggregate id the event names; its headers are "
                "`eventType`, `eventVersion` and `correlationId`. Delivery is at least once, ordered per key "
                "within a partition; consumers are idempotent.\n\n"
                "Each message's payload is the JSON Schema in schemas/ that `make generate` keeps backward "
                "compatible (a breaking change is a new eventVersion). Personal fields are marked `x-personal` "
                "and travel sealed in the newest versions (docs/data-map.md). docs/events.md is the same catalog "
                "as tables."),
            "tags": [{"name": s.name, "description": s.description} for s in catalog.SERVICES],
        },
        "defaultContentType": "application/json",
        "servers": _servers(environments),
        "channels": {t.name: _channel(t, environments) for t in catalog.TOPICS},
        "operations": _operations(),
        "components": {
            "messages": {message_id(e): _message(e) for e in catalog.EVENTS},
            "securitySchemes": {"mskIam": {
                "type": "oauth2",
                "description": (
                    "Amazon MSK IAM access control: SASL/OAUTHBEARER over TLS (security.protocol SASL_SSL, "
                    "sasl.mechanism OAUTHBEARER). No authorization server issues the token: the client signs it "
                    "itself with its AWS credentials (aws-msk-iam-sasl-signer, SigV4), and the IAM policies of "
                    "each function allow kafka-cluster actions on the cluster, its topics and its consumer groups "
                    "(kafka-cluster:Connect, WriteData, ReadData, AlterGroup, ...)."),
                "flows": {},
                "x-security-protocol": "SASL_SSL",
                "x-sasl-mechanism": "OAUTHBEARER",
            }},
            "correlationIds": {"correlationId": {
                "description": "The request's correlation id, carried by every event it causes (and the audit trail).",
                "location": f"$message.header#/{wire.HEADER_CORRELATION_ID}",
            }},
        },
    })


def yaml_text(doc: dict[str, Any] | None = None) -> str:
    class Dumper(yaml.SafeDumper):
        """Multi-line descriptions as literal blocks (``|``), read as they are written."""

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    body = yaml.dump(document() if doc is None else doc, Dumper=Dumper, sort_keys=False, allow_unicode=True,
                     width=118)
    return HEADER + body


def load(path: Path = ASYNCAPI_DOC) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded
