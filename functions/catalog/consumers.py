"""The catalog service's event consumers: a Lambda function each, behind its MSK event source mapping."""

from __future__ import annotations

from shopstream.consumer import EventConsumer

from . import logic

stock_availability = EventConsumer("catalog", "stock-availability", logic.on_stock_event)
