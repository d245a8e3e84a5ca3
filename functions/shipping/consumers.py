"""The shipping service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

from shopstream.consumer import EventConsumer

from . import logic

order_fulfilment = EventConsumer("shipping", "order-fulfilment", logic.on_order_event)
