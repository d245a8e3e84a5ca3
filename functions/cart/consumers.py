"""The cart service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

from shopstream.consumer import EventConsumer

from . import logic

product_sync = EventConsumer("cart", "product-sync", logic.on_product_event)
order_checkout = EventConsumer("cart", "order-checkout", logic.on_order_created)
user_sync = EventConsumer("cart", "user-sync", logic.on_user_deactivated)
