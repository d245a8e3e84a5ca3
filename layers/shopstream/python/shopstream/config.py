"""Typed settings from the environment, read once on first use (never at import)."""

from __future__ import annotations

from functools import cache
from typing import Literal

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
    # Outbox items only need to live until the relay has published them.
    outbox_ttl_seconds: int = 24 * 3600
    producer_flush_timeout_seconds: float = 10.0


@cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the local runner change the environment)."""
    get_settings.cache_clear()
