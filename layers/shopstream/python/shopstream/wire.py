"""How an envelope becomes a Kafka record and how an MSK event record becomes one again."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from shopstream import catalog
from shopstream.envelope import EventEnvelope
from shopstream.tracing import REDELIVERY_HEADER

HEADER_EVENT_TYPE = "eventType"
HEADER_EVENT_VERSION = "eventVersion"
HEADER_CORRELATION_ID = "correlationId"


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    event_id: str


def to_record(envelope: EventEnvelope) -> OutgoingRecord:
    """Topic and key come from the catalog; the key is the aggregate id found in ``data``."""
    spec = catalog.event(envelope.event_type, envelope.event_version)
    key = envelope.data.get(spec.key_field)
    if not key:
        raise ValueError(f"{envelope.event_type} data lacks its key field {spec.key_field!r}")
    return outgoing(
        topic=spec.topic,
        key=str(key),
        value_json=envelope.model_dump_json(by_alias=True),
        event_type=envelope.event_type,
        event_version=envelope.event_version,
        correlation_id=envelope.correlation_id,
        event_id=envelope.event_id,
    )


def outgoing(
    *,
    topic: str,
    key: str,
    value_json: str,
    event_type: str,
    event_version: str,
    correlation_id: str,
    event_id: str,
) -> OutgoingRecord:
    """Headers let consumers filter on type without parsing the value."""
    return OutgoingRecord(
        topic=topic,
        key=key,
        value=value_json.encode("utf-8"),
        headers=(
            (HEADER_EVENT_TYPE, event_type.encode()),
            (HEADER_EVENT_VERSION, event_version.encode()),
            (HEADER_CORRELATION_ID, correlation_id.encode()),
        ),
        event_id=event_id,
    )


@dataclass(frozen=True)
class IncomingRecord:
    """One record of an ``aws:kafka`` event with its bytes decoded, nothing parsed yet."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    raw: dict[str, Any]

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value.decode("utf-8", "replace") if value is not None else None


def decode_msk_record(raw: dict[str, Any]) -> IncomingRecord:
    """Lambda sends key and value base64-encoded and header values as lists of byte ints."""
    headers: dict[str, bytes] = {}
    for entry in raw.get("headers") or ():
        for name, value in entry.items():
            headers[name] = bytes(value)
    return IncomingRecord(
        topic=raw["topic"],
        partition=int(raw["partition"]),
        offset=int(raw["offset"]),
        timestamp=raw.get("timestamp"),
        key=base64.b64decode(raw["key"]) if raw.get("key") is not None else None,
        value=base64.b64decode(raw["value"]) if raw.get("value") is not None else None,
        headers=headers,
        raw=raw,
    )


def msk_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] = (),
    timestamp_ms: int = 0,
) -> dict[str, Any]:
    """Build one record exactly as Lambda's MSK event source mapping delivers it."""
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp_ms,
        "timestampType": "CREATE_TIME",
        "key": base64.b64encode(key).decode() if key is not None else None,
        "value": base64.b64encode(value).decode() if value is not None else None,
        "headers": [{name: list(value)} for name, value in headers],
    }


def msk_record_of(message: Any) -> dict[str, Any]:
    """The record a mapping delivers for one message read with confluent-kafka (the local runner,
    replay and redrive all build records this way)."""
    return msk_record(topic=message.topic(), partition=message.partition(), offset=message.offset(),
                      key=message.key(), value=message.value(),
                      headers=[(name, value or b"") for name, value in message.headers() or []],
                      timestamp_ms=message.timestamp()[1])


def msk_event(records: list[dict[str, Any]], *, cluster_arn: str = "", bootstrap_servers: str = "") -> dict[str, Any]:
    """Group records by ``topic-partition`` as the ``aws:kafka`` event does."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(f"{record['topic']}-{record['partition']}", []).append(record)
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": cluster_arn or "arn:aws:kafka:eu-west-1:000000000000:cluster/shopstream-local/local",
        "bootstrapServers": bootstrap_servers,
        "records": grouped,
    }


def redelivered(record: dict[str, Any], how: str) -> dict[str, Any]:
    """An ``aws:kafka`` record (``msk_record``) marked as sent again by a tool (``replay``, ``redrive``): its
    handler's span starts a new trace linked to the record's own context instead of joining that trace."""
    headers = [entry for entry in record.get("headers") or () if REDELIVERY_HEADER not in entry]
    return {**record, "headers": [*headers, {REDELIVERY_HEADER: list(how.encode())}]}
