"""Lambda entry points of the inventory service."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi, caller
from shopstream.consumer import EventConsumer

from . import logic
from .models import Adjustment, StockView

service_api = ServiceApi("inventory", title="inventory service")
app = service_api.app
api = service_api.handler

product_sync = EventConsumer("inventory", "product-sync", logic.on_product_event)
order_reservations = EventConsumer("inventory", "order-reservations", logic.on_order_event)
payment_outcomes = EventConsumer("inventory", "payment-outcomes", logic.on_payment_event)


@app.get("/inventory/<productId>")
def get_stock(productId: PathId) -> StockView:
    return logic.view(productId)


@app.post("/inventory/<productId>/adjustments")
def adjust_stock(productId: PathId, body: Adjustment) -> StockView:
    return logic.adjust(caller(), productId, body)
