"""The audit service's event consumers: a Lambda function each, behind its MSK event source mapping
(a trail handler per topic, and the analytics)."""

from __future__ import annotations

from shopstream import catalog
from shopstream.consumer import EventConsumer

from . import logic

# trail_user, trail_catalog, ... one per topic, as the catalog declares them.
for _handler in catalog.service("audit").handlers:
    if _handler.name.startswith("trail-"):
        globals()[_handler.entry] = EventConsumer("audit", _handler.name, logic.on_any_event)

analytics_orders = EventConsumer("audit", "analytics-orders", logic.on_order_metrics)
analytics_payments = EventConsumer("audit", "analytics-payments", logic.on_payment_metrics)
analytics_inventory = EventConsumer("audit", "analytics-inventory", logic.on_inventory_metrics)
