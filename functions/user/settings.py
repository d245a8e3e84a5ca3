"""The user service's own settings, from the environment (``SHOPSTREAM_<NAME>``), read on first use."""

from __future__ import annotations

from shopstream.config import EnvSettings, service_settings


class UserSettings(EnvSettings):

    # The Cognito user pool whose sign-in identity an erasure deletes (the catalog's "identity" need);
    # empty locally, where tokens are signed by local/auth.py and no identity is stored.
    user_pool_id: str = ""


def settings() -> UserSettings:
    return service_settings(UserSettings)
