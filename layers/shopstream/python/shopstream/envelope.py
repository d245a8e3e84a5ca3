"""The event envelope every record on every topic carries (camelCase on the wire)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator
from pydantic.alias_generators import to_camel

from shopstream.declarations import declaration_of


class WireModel(BaseModel):
    """Base for everything that crosses a service boundary: camelCase JSON, snake_case Python."""

    # Validators and serializers are built on a model's first use, not at import: a function's cold
    # start builds the models it uses, not every one it imports (docs/decisions.md, 2026-11-29).
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)


# What a correlation id may look like: it is a key in the audit trail and travels in headers and
# logs, so it is short and plain. The API replaces any other value it is sent (api.py).
CORRELATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class EventMetadata(WireModel):
    user_id: str | None = Field(default=None, max_length=128)
    session_id: str | None = Field(default=None, max_length=128)


def _utc_now() -> datetime:
    # Millisecond precision, as on the wire, so an event equals itself after a round trip.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class EventEnvelope(WireModel):
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    event_type: str = Field(min_length=1)
    event_version: str = Field(default="v1", pattern=r"^v[1-9][0-9]*$")
    timestamp: datetime = Field(default_factory=_utc_now)
    source: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9-]*-service$")
    correlation_id: str = Field(min_length=1, max_length=128, pattern=CORRELATION_ID_PATTERN)
    causation_id: str | None = Field(default=None, max_length=128)
    data: dict[str, Any]
    metadata: EventMetadata = Field(default_factory=EventMetadata)

    @field_validator("event_id")
    @classmethod
    def _event_id_is_uuid(cls, value: str) -> str:
        uuid.UUID(value)
        return value

    @field_validator("timestamp")
    @classmethod
    def _timestamp_is_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp must carry a UTC offset")
        return value.astimezone(UTC)

    @field_serializer("timestamp")
    def _timestamp_iso(self, value: datetime) -> str:
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def service_source(service: str) -> str:
    """The envelope's ``source`` for a service name: ``order`` -> ``order-service``."""
    return f"{service}-service"


def event_from_command(
    *,
    event_type: str,
    data: BaseModel | dict[str, Any],
    service: str,
    correlation_id: str,
    user_id: str | None = None,
    session_id: str | None = None,
    event_version: str | None = None,
) -> EventEnvelope:
    """An event caused directly by an API command: it starts a causal chain.

    ``event_version``: by default the version the data's model is registered as (a dict: v1)."""
    return EventEnvelope(
        event_type=event_type,
        event_version=event_version or _version_of(data),
        source=service_source(service),
        correlation_id=correlation_id,
        causation_id=None,
        data=_data_dict(data),
        metadata=EventMetadata(user_id=user_id, session_id=session_id),
    )


def event_from_event(
    parent: EventEnvelope,
    *,
    event_type: str,
    data: BaseModel | dict[str, Any],
    service: str,
    event_version: str | None = None,
) -> EventEnvelope:
    """An event caused by another one: same correlation, causation = the parent's id."""
    return EventEnvelope(
        event_type=event_type,
        event_version=event_version or _version_of(data),
        source=service_source(service),
        correlation_id=parent.correlation_id,
        causation_id=parent.event_id,
        data=_data_dict(data),
        metadata=parent.metadata,
    )


def _version_of(data: BaseModel | dict[str, Any]) -> str:
    if not isinstance(data, BaseModel):
        return "v1"
    return declaration_of(type(data)).version


def _data_dict(data: BaseModel | dict[str, Any]) -> dict[str, Any]:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dict(data)
