"""The user service's own settings, from the environment (``SHOPSTREAM_<NAME>``), read on first use."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from shopstream.config import service_settings


class UserSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_", extra="ignore")

    # The Cognito user pool whose sign-in identity an erasure deletes (the catalog's "identity" need);
    # empty locally, where tokens are signed by local/auth.py and no identity is stored.
    user_pool_id: str = ""


def settings() -> UserSettings:
    return service_settings(UserSettings)
