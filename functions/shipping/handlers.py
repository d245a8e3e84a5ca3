"""Lambda entry points of the shipping service."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi, caller
from shopstream.consumer import EventConsumer

from . import logic
from .models import ShipmentView

service_api = ServiceApi("shipping", title="shipping service")
app = service_api.app
api = service_api.handler

order_fulfilment = EventConsumer("shipping", "order-fulfilment", logic.on_order_event)


@app.get("/shipments/<shipmentId>")
def get_shipment(shipmentId: PathId) -> ShipmentView:
    return logic.get(caller(), shipmentId)


@app.get("/orders/<orderId>/shipment")
def get_order_shipment(orderId: PathId) -> ShipmentView:
    return logic.get_for_order(caller(), orderId)


@app.post("/shipments/<shipmentId>/dispatch")
def dispatch_shipment(shipmentId: PathId) -> ShipmentView:
    return logic.dispatch(caller(), shipmentId)


@app.post("/shipments/<shipmentId>/deliver")
def deliver_shipment(shipmentId: PathId) -> ShipmentView:
    return logic.deliver(caller(), shipmentId)
