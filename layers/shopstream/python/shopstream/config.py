"""Typed settings from the environment, read once on first use (never at import)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, model_validator


class EnvSettings(BaseModel):
    """Settings from the environment, as pydantic-settings reads flat settings: a value given to the
    constructor, else the variable ``SHOPSTREAM_<FIELD>`` (or, for a field with a validation alias,
    the first of its aliases that is set), else the default. pydantic-settings itself is not loaded:
    its sources (dotenv, CLI, cloud secret stores) cost every function's cold start more than all it
    reads here (docs/decisions.md, 2026-11-29). Nothing is built before the first read."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)
    env_prefix: ClassVar[str] = "SHOPSTREAM_"

    @model_validator(mode="before")
    @classmethod
    def _environment_first(cls, values: Any, info: ValidationInfo) -> Any:
        if not isinstance(values, dict):
            return values
        environment = (info.context or {}).get("environment", os.environ)
        return {**environment_values(cls, environment), **values}


def environment_values(model: type[EnvSettings], environment: Mapping[str, str]) -> dict[str, str]:
    """The fields a model finds set in this environment, by field name."""
    values: dict[str, str] = {}
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        keys = alias.choices if isinstance(alias, AliasChoices) else [f"{model.env_prefix}{name.upper()}"]
        for key in keys:
            if isinstance(key, str) and key in environment:
                values[name] = environment[key]
                break
    return values


class Settings(EnvSettings):

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
    # Outbox items outlive their stream records (24 h; the relay gives a batch up at most 12 h after its commit),
    # so the relay's retries and direct publish's read-back always find them. A batch the relay gave up is kept
    # whole in S3 (an S3 destination gets the invocation record itself: the stream records, i.e. the outbox items),
    # so no redrive reads them from the table (the readiness rule every_given_up_batch_is_announced...; 15 days
    # before 2026-12-05, docs/decisions.md).
    outbox_ttl_seconds: int = 2 * 24 * 3600
    producer_flush_timeout_seconds: float = 10.0
    # Whether the consumer's mapping honours a partial batch response (ReportBatchItemFailures, which Kafka
    # mappings take in provisioned mode only). If not, Lambda commits every offset of a batch the function
    # returns from: the consumer then fails the whole invocation when any record failed (shopstream.consumer).
    # The stacks set it per environment (cdk.json eventPollers.mode); docs/decisions.md, 2026-12-05.
    partial_batch_response: bool = True
    # Publish a transaction's events to Kafka right after its commit, the outbox relay as the fallback
    # (shopstream.direct): set by the stacks on the critical path's committers, and on their service's relay so it
    # holds their events back, where cdk.json's ``directPublish`` is on. Off: the relay publishes everything.
    direct_publish: bool = False
    # At most this many keys of a batch run at once, whatever the handler's concurrency (catalog); None: the
    # catalog's. The local runtime sets 1: every function there shares one process, one GIL and moto's one request
    # at a time, so keys side by side overlap no wait and only race each other (docs/decisions.md, 2026-12-05).
    handler_concurrency_cap: int | None = Field(default=None, ge=1)
    # How long a direct publish waits for the broker's acknowledgement before leaving its events to the relay.
    direct_publish_timeout_seconds: float = 0.25
    # Set by the catalog for handlers that need them (HandlerSpec.needs).
    audit_archive_bucket: str = ""
    notification_channel: Literal["table", "ses"] = "table"
    # The customer key store and the KMS key that wraps its keys (shopstream.personal), for the
    # functions that seal or open personal data (HandlerSpec.needs / ServiceSpec.api_needs).
    customer_keys_table: str = ""
    customer_data_key: str = ""
    # The KMS HMAC key that fingerprints a request's body for its Idempotency-Key (shopstream.key_binding),
    # for API functions with a creating route.
    request_fingerprint_key: str = ""


# The variable that sets Settings.partial_batch_response (the stacks write it, the readiness suite reads it).
PARTIAL_BATCH_RESPONSE_ENV = f"{EnvSettings.env_prefix}PARTIAL_BATCH_RESPONSE"


def settings_from(environment: dict[str, str]) -> Settings:
    """Settings as a function with exactly this environment would read them (local runner)."""
    return Settings.model_validate({}, context={"environment": environment})


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


S = TypeVar("S", bound=EnvSettings)
_service_settings: dict[type[EnvSettings], EnvSettings] = {}


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
