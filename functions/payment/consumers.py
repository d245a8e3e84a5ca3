"""The payment service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

from shopstream.consumer import EventConsumer

from . import logic

order_payments = EventConsumer("payment", "order-payments", logic.on_order_event)
inventory_outcomes = EventConsumer("payment", "inventory-outcomes", logic.on_stock_reserved)
