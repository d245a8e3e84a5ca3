"""Lambda entry points of the order service."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi, caller, created
from shopstream.consumer import EventConsumer

from . import logic
from .models import OrderHistory, OrderView, PlaceOrder

service_api = ServiceApi("order", title="order service")
app = service_api.app
api = service_api.handler

user_replica = EventConsumer("order", "user-replica", logic.on_user_event)
product_replica = EventConsumer("order", "product-replica", logic.on_product_event)
inventory_outcomes = EventConsumer("order", "inventory-outcomes", logic.on_inventory_event)
payment_outcomes = EventConsumer("order", "payment-outcomes", logic.on_payment_event)
shipping_outcomes = EventConsumer("order", "shipping-outcomes", logic.on_shipping_event)


@app.post("/orders")
def place_order(body: PlaceOrder):
    return created(logic.place(caller(), body), status=202)


@app.get("/orders/<orderId>")
def get_order(orderId: PathId) -> OrderView:
    return logic.get(caller(), orderId)


@app.get("/users/<userId>/orders")
def list_orders(userId: PathId) -> OrderHistory:
    return logic.history(caller(), userId)


@app.post("/orders/<orderId>/cancel")
def cancel_order(orderId: PathId):
    return created(logic.cancel_by_customer(caller(), orderId), status=202)


def sweep_saga_timeouts(event, context):
    return {"cancelled": logic.sweep_timeouts()}
