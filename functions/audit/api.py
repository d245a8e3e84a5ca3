"""The audit service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from shopstream.api import PathId, ServiceApi
from shopstream.request import caller

from . import logic
from .models import AnalyticsLive, AuditTrail

service_api = ServiceApi("audit", title="audit service")
app = service_api.app
handler = service_api.handler


@app.get("/audit/<correlationId>")
def get_trail(correlationId: PathId) -> AuditTrail:
    return AuditTrail(correlation_id=correlationId, events=logic.trail(caller(), correlationId))


@app.get("/analytics/live")
def get_live_analytics(minutes: Annotated[int, Query(ge=1, le=1440)] = 15) -> AnalyticsLive:
    """The last ``minutes`` one-minute windows (oldest first) and the open alerts (admin only)."""
    return AnalyticsLive.model_validate(logic.live(minutes))
