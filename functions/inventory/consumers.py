"""The inventory service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

# First, before anything loads pydantic: Powertools' batch module then skips loading a pydantic model
# of every AWS event source, which it needs for type hints only (docs/decisions.md, 2026-11-29).
import aws_lambda_powertools.utilities.batch  # noqa: F401

from shopstream.consumer import EventConsumer

from . import logic

product_sync = EventConsumer("inventory", "product-sync", logic.on_product_event)
order_reservations = EventConsumer("inventory", "order-reservations", logic.on_order_event)
payment_outcomes = EventConsumer("inventory", "payment-outcomes", logic.on_payment_event)
