"""The order service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi, created
from shopstream.request import caller

from . import logic
from .models import OrderHistory, OrderView, PlaceOrder

service_api = ServiceApi("order", title="order service")
app = service_api.app
handler = service_api.handler


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
