"""Lambda entry points of the payment service."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi, caller
from shopstream.consumer import EventConsumer

from . import logic
from .models import PaymentView

service_api = ServiceApi("payment", title="payment service")
app = service_api.app
api = service_api.handler

order_payments = EventConsumer("payment", "order-payments", logic.on_order_event)
inventory_outcomes = EventConsumer("payment", "inventory-outcomes", logic.on_stock_reserved)


@app.get("/payments/<paymentId>")
def get_payment(paymentId: PathId) -> PaymentView:
    return logic.get(caller(), paymentId)
