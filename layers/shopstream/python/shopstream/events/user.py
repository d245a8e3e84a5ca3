"""The events of user-events (version v1)."""

from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import Id, Text, Version


class UserRegistered(WireModel):
    user_id: Id
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    version: Version = 1


class UserUpdated(WireModel):
    user_id: Id
    email: str | None = Field(default=None, min_length=3, max_length=254)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    version: Version


class UserDeactivated(WireModel):
    user_id: Id
    reason: Text | None = None
    version: Version
