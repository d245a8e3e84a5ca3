"""Lambda entry points of the audit service: one trail handler per topic, analytics, and the API."""

from __future__ import annotations

from shopstream import catalog
from shopstream.api import PathId, ServiceApi, caller
from shopstream.consumer import EventConsumer

from . import logic
from .models import AuditTrail

service_api = ServiceApi("audit", title="audit service")
app = service_api.app
api = service_api.handler

# trail_user, trail_catalog, ... one per topic, as the catalog declares them.
for _handler in catalog.service("audit").handlers:
    if _handler.name.startswith("trail-"):
        globals()[_handler.entry] = EventConsumer("audit", _handler.name, logic.on_any_event)

analytics_orders = EventConsumer("audit", "analytics-orders", logic.on_order_metrics)
analytics_payments = EventConsumer("audit", "analytics-payments", logic.on_payment_metrics)


@app.get("/audit/<correlationId>")
def get_trail(correlationId: PathId) -> AuditTrail:
    return AuditTrail(correlation_id=correlationId, events=logic.trail(caller(), correlationId))
