from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel


class RegisterUser(WireModel):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)


class UpdateUser(WireModel):
    email: str | None = Field(default=None, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str | None = Field(default=None, min_length=1, max_length=200)


class UserProfile(WireModel):
    user_id: str
    email: str
    name: str
    status: str
    version: int
    created_at: str
