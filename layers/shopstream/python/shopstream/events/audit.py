"""The events of audit-events (version v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import Id


class AuditRecorded(WireModel):
    """Who did what through the API, and how it ended."""

    actor: Id
    action: str = Field(min_length=1, max_length=100)
    resource: str = Field(min_length=1, max_length=300)
    outcome: Literal["success", "rejected", "failed"]
    status_code: int = Field(ge=100, le=599)
