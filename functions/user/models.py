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
    """The profile. ``email`` and ``name`` only where the caller reads it (GET, PATCH): the answer to
    POST /users, which a retry with the same Idempotency-Key gets again from the idempotency table for
    24 hours, repeats no personal data. An erased profile has neither."""

    user_id: str
    email: str | None = None
    name: str | None = None
    status: str  # ACTIVE, DEACTIVATED, ERASED
    version: int
    created_at: str
    erased_at: str | None = None


class ErasureAccepted(WireModel):
    user_id: str
    status: str  # ERASED
    erased_at: str
