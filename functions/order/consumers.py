"""The order service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

# First, before anything loads pydantic: Powertools' batch module then skips loading a pydantic model
# of every AWS event source, which it needs for type hints only (docs/decisions.md, 2026-11-29).
import aws_lambda_powertools.utilities.batch  # noqa: F401

from shopstream.consumer import EventConsumer

from . import logic

user_replica = EventConsumer("order", "user-replica", logic.on_user_event)
product_replica = EventConsumer("order", "product-replica", logic.on_product_event)
inventory_outcomes = EventConsumer("order", "inventory-outcomes", logic.on_inventory_event)
payment_outcomes = EventConsumer("order", "payment-outcomes", logic.on_payment_event)
shipping_outcomes = EventConsumer("order", "shipping-outcomes", logic.on_shipping_event)
