"""The audit service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from shopstream import pages
from shopstream.api import PathId, ServiceApi
from shopstream.request import caller

from . import logic
from .models import LIVE_MINUTES_MAX, TRAIL_PAGE_DEFAULT, TRAIL_PAGE_MAX, AnalyticsLive, AuditTrail

service_api = ServiceApi("audit", title="audit service")
app = service_api.app
handler = service_api.handler

PageLimit = Annotated[int, Query(ge=1, le=TRAIL_PAGE_MAX, description=pages.LIMIT_DESCRIPTION)]
PageCursor = Annotated[str | None, Query(max_length=pages.MAX_CURSOR_LENGTH, pattern=pages.CURSOR_PATTERN,
                                         description=pages.CURSOR_DESCRIPTION)]


@app.get("/audit/<correlationId>")
def get_trail(
    correlationId: PathId,
    limit: PageLimit = TRAIL_PAGE_DEFAULT,
    cursor: PageCursor = None,
) -> AuditTrail:
    """The events of a correlation id, a page at a time (follow nextCursor; admin only)."""
    events, next_cursor = logic.trail(caller(), correlationId, limit, cursor)
    return AuditTrail(correlation_id=correlationId, events=events, next_cursor=next_cursor)


@app.get("/analytics/live")
def get_live_analytics(minutes: Annotated[int, Query(ge=1, le=LIVE_MINUTES_MAX)] = 15) -> AnalyticsLive:
    """The last ``minutes`` one-minute windows (oldest first) and the newest open alerts (admin only)."""
    return AnalyticsLive.model_validate(logic.live(minutes))
