"""Lambda entry points of the audit service: one trail handler per topic, analytics, and the API."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query

from shopstream import catalog
from shopstream.api import PathId, ServiceApi, caller
from shopstream.consumer import EventConsumer

from . import logic
from .models import AnalyticsLive, AuditTrail

service_api = ServiceApi("audit", title="audit service")
app = service_api.app
api = service_api.handler

# trail_user, trail_catalog, ... one per topic, as the catalog declares them.
for _handler in catalog.service("audit").handlers:
    if _handler.name.startswith("trail-"):
        globals()[_handler.entry] = EventConsumer("audit", _handler.name, logic.on_any_event,
                                                  after_batch=logic.archive_batch)

analytics_orders = EventConsumer("audit", "analytics-orders", logic.on_order_metrics)
analytics_payments = EventConsumer("audit", "analytics-payments", logic.on_payment_metrics)
analytics_inventory = EventConsumer("audit", "analytics-inventory", logic.on_inventory_metrics)


@app.get("/audit/<correlationId>")
def get_trail(correlationId: PathId) -> AuditTrail:
    return AuditTrail(correlation_id=correlationId, events=logic.trail(caller(), correlationId))


@app.get("/analytics/live")
def get_live_analytics(minutes: Annotated[int, Query(ge=1, le=1440)] = 15) -> AnalyticsLive:
    """The last ``minutes`` one-minute windows (oldest first) and the open alerts (admin only)."""
    return AnalyticsLive.model_validate(logic.live(minutes))


def close_windows(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"closed": logic.close_windows()}
