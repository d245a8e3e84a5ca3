"""Typed settings from the environment, read once on first use (never at import)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Literal, TypeVar

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_", extra="ignore")

    environment: str = "local"
    service: str = ""
    handler: str = ""
    table_name: str = ""
    idempotency_table_name: str = ""
    dlq_url: str = ""
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("SHOPSTREAM_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_auth: Literal["none", "iam"] = "none"
    aws_region: str = Field(default="eu-west-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    # How long a processed eventId is remembered; longer than the longest redelivery (ESM max record age).
    idempotency_ttl_seconds: int = 7 * 24 * 3600
    # Outbox items outlive the table stream's 24 h so a relay outage can be redriven from the table
    # (tools/ops.py relay redrive); the relay's failure queue alarms at its first message.
    outbox_ttl_seconds: int = 4 * 24 * 3600
    producer_flush_timeout_seconds: float = 10.0
    # Set by the catalog for handlers that need them (HandlerSpec.needs).
    audit_archive_bucket: str = ""
    notification_channel: Literal["table", "ses"] = "table"
    # The customer key store and the KMS key that wraps its keys (shopstream.personal), for the
    # functions that seal or open personal data (HandlerSpec.needs / ServiceSpec.api_needs).
    customer_keys_table: str = ""
    customer_data_key: str = ""


def settings_from(environment: dict[str, str]) -> Settings:
    """Settings as a function with exactly this environment would read them (local runner)."""
    values: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        aliases = field.validation_alias.choices if field.validation_alias else []  # type: ignore[union-attr]
        for key in [f"SHOPSTREAM_{name.upper()}", *aliases]:
            if key in environment:
                values[name] = environment[key]
                break
    return Settings.model_validate(values)


_override: ContextVar[Settings | None] = ContextVar("shopstream_settings_override", default=None)


@cache
def _from_environment() -> Settings:
    return Settings()


def get_settings() -> Settings:
    return _override.get() or _from_environment()


def reset_settings() -> None:
    """Forget the cached settings (tests and the local runner change the environment)."""
    _from_environment.cache_clear()
    _service_settings.clear()


S = TypeVar("S", bound=BaseSettings)
_service_settings: dict[type[BaseSettings], BaseSettings] = {}


def service_settings(model: type[S]) -> S:
    """A service's own settings (its knobs, ``SHOPSTREAM_<NAME>``), read once on first use."""
    if model not in _service_settings:
        _service_settings[model] = model()
    found = _service_settings[model]
    assert isinstance(found, model)
    return found


@contextmanager
def override_settings(settings: Settings) -> Iterator[Settings]:
    """Run code as one service/handler while several share a process (in-process bus, local runner)."""
    token = _override.set(settings)
    try:
        yield settings
    finally:
        _override.reset(token)
