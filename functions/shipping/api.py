"""The shipping service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi
from shopstream.request import caller

from . import logic
from .models import ShipmentView

service_api = ServiceApi("shipping", title="shipping service")
app = service_api.app
handler = service_api.handler


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
