"""The notification service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

from shopstream.consumer import EventConsumer

from . import logic

user_notices = EventConsumer("notification", "user-notices", logic.on_user_event)
order_notices = EventConsumer("notification", "order-notices", logic.notify)
payment_notices = EventConsumer("notification", "payment-notices", logic.notify)
shipping_notices = EventConsumer("notification", "shipping-notices", logic.notify)
cart_notices = EventConsumer("notification", "cart-notices", logic.notify)
alert_notices = EventConsumer("notification", "alert-notices", logic.notify_admins)
