"""The order service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

from shopstream.consumer import EventConsumer

from . import logic

user_replica = EventConsumer("order", "user-replica", logic.on_user_event)
product_replica = EventConsumer("order", "product-replica", logic.on_product_event)
inventory_outcomes = EventConsumer("order", "inventory-outcomes", logic.on_inventory_event)
payment_outcomes = EventConsumer("order", "payment-outcomes", logic.on_payment_event)
shipping_outcomes = EventConsumer("order", "shipping-outcomes", logic.on_shipping_event)
