from __future__ import annotations

from typing import Any

from shopstream.envelope import WireModel


class AuditTrail(WireModel):
    correlation_id: str
    events: list[dict[str, Any]]
