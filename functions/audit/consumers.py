"""The audit service's event consumers: a Lambda function each, behind its MSK event source mapping
(a trail handler per topic, and the analytics)."""

from __future__ import annotations

# First, before anything loads pydantic: Powertools' batch module then skips loading a pydantic model
# of every AWS event source, which it needs for type hints only (docs/decisions.md, 2026-11-29).
import aws_lambda_powertools.utilities.batch  # noqa: F401

from shopstream import catalog
from shopstream.consumer import EventConsumer

from . import logic

# trail_user, trail_catalog, ... one per topic, as the catalog declares them.
for _handler in catalog.service("audit").handlers:
    if _handler.name.startswith("trail-"):
        globals()[_handler.entry] = EventConsumer("audit", _handler.name, logic.on_any_event,
                                                  after_batch=logic.archive_batch)

# Each handler returns its events' counts; they are written once per batch (logic.count_batch).
analytics_orders = EventConsumer("audit", "analytics-orders", logic.on_order_metrics, after_batch=logic.count_batch)
analytics_payments = EventConsumer("audit", "analytics-payments", logic.on_payment_metrics,
                                   after_batch=logic.count_batch)
analytics_inventory = EventConsumer("audit", "analytics-inventory", logic.on_inventory_metrics,
                                    after_batch=logic.count_batch)
