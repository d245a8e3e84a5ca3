"""The payment service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

# First, before anything loads pydantic: Powertools' batch module then skips loading a pydantic model
# of every AWS event source, which it needs for type hints only (docs/decisions.md, 2026-11-29).
import aws_lambda_powertools.utilities.batch  # noqa: F401

from shopstream.consumer import EventConsumer

from . import logic

order_payments = EventConsumer("payment", "order-payments", logic.on_order_event)
inventory_outcomes = EventConsumer("payment", "inventory-outcomes", logic.on_inventory_event)
