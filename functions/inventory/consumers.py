"""The inventory service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

from shopstream.consumer import EventConsumer

from . import logic

product_sync = EventConsumer("inventory", "product-sync", logic.on_product_event)
order_reservations = EventConsumer("inventory", "order-reservations", logic.on_order_event)
payment_outcomes = EventConsumer("inventory", "payment-outcomes", logic.on_payment_event)
