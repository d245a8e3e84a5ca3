"""The notification service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

# First, before anything loads pydantic: Powertools' batch module then skips loading a pydantic model
# of every AWS event source, which it needs for type hints only (docs/decisions.md, 2026-11-29).
import aws_lambda_powertools.utilities.batch  # noqa: F401

from shopstream.consumer import EventConsumer

from . import logic

user_notices = EventConsumer("notification", "user-notices", logic.on_user_event)
order_notices = EventConsumer("notification", "order-notices", logic.notify)
payment_notices = EventConsumer("notification", "payment-notices", logic.notify)
shipping_notices = EventConsumer("notification", "shipping-notices", logic.notify)
cart_notices = EventConsumer("notification", "cart-notices", logic.notify)
alert_notices = EventConsumer("notification", "alert-notices", logic.notify_admins)
