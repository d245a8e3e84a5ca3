"""The events of audit-events (version v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import Id, example

audit_event = TopicEvents("audit-events", key="actor")


@audit_event
class AuditRecorded(WireModel):
    """Who did what through the API, and how it ended."""

    model_config = example({"actor": "u-1", "action": "POST /orders", "resource": "/orders", "outcome": "success",
                            "statusCode": 202})

    actor: Id
    action: str = Field(min_length=1, max_length=100)
    resource: str = Field(min_length=1, max_length=300)
    outcome: Literal["success", "rejected", "failed"]
    status_code: int = Field(ge=100, le=599)
