"""Shipments: created when an order is confirmed; CREATED -> DISPATCHED -> DELIVERED, or CANCELLED."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from shopstream.api import Caller, Conflict, commit
from shopstream.consumer import InboundEvent
from shopstream.envelope import event_from_event
from shopstream.events import ShippingCreated, ShippingDelivered, ShippingDispatched
from shopstream.outbox import ConditionFailed, UnitOfWork

from . import store
from .models import ShipmentView

SERVICE = "shipping"
CARRIER = "An Post"


def get(caller: Caller, shipment_id: str) -> ShipmentView:
    item = store.get_shipment(shipment_id)
    caller.require_owner(item["userId"] if item else None, "shipment not found")
    return ShipmentView.model_validate(item)


def get_for_order(caller: Caller, order_id: str) -> ShipmentView:
    return get(caller, store.shipment_id_for(order_id))


def on_order_event(event: InboundEvent) -> None:
    data = event.data
    uow = UnitOfWork()
    if event.event_type == "OrderCreated":
        store.record_fulfilment(uow, {"orderId": data.order_id, "userId": data.user_id,
                                      "address": data.shipping_address.to_wire(),
                                      "items": [{"productId": i.product_id, "quantity": i.quantity}
                                                for i in data.items]})
    elif event.event_type == "OrderConfirmed":
        details = store.get_fulfilment(data.order_id)
        if details is None or details["status"] != "AWAITING_PAYMENT":
            return
        shipment_id = store.shipment_id_for(data.order_id)
        store.close_fulfilment(uow, data.order_id, "SHIPMENT_CREATED")
        store.create_shipment(uow, {"shipmentId": shipment_id, "orderId": data.order_id, "userId": data.user_id,
                                    "address": details["address"], "items": details["items"]})
        uow.emit(event_from_event(event.envelope, event_type="ShippingCreated", service=SERVICE,
                                  data=ShippingCreated(shipment_id=shipment_id, order_id=data.order_id,
                                                       user_id=data.user_id, address=details["address"],
                                                       items=details["items"])))
    else:  # OrderCancelled
        shipment = store.get_shipment(store.shipment_id_for(data.order_id))
        if shipment is not None:
            if shipment["status"] != "CREATED":
                return  # dispatched parcels are not recalled here
            store.move_shipment(uow, shipment["shipmentId"], "CREATED", "CANCELLED")
        elif (details := store.get_fulfilment(data.order_id)) and details["status"] == "AWAITING_PAYMENT":
            store.close_fulfilment(uow, data.order_id, "CANCELLED")
        else:
            return
    try:
        uow.commit()
    except ConditionFailed:
        pass  # already handled


def _advance(caller: Caller, shipment_id: str, *, expected: str, status: str, event_type: str,
             fields: dict, data) -> ShipmentView:
    """An admin moves a shipment one step, with the event it causes, in one transaction."""
    caller.require_admin()
    shipment = get(caller, shipment_id)
    if shipment.status != expected:
        raise Conflict(f"a {shipment.status} shipment cannot become {status}")
    uow = UnitOfWork()
    store.move_shipment(uow, shipment_id, expected, status, **fields)
    uow.emit(caller.command(event_type, data(shipment), SERVICE))
    try:
        commit(uow, status=200)
    except ConditionFailed:
        raise Conflict("the shipment changed meanwhile") from None
    return get(caller, shipment_id)


def dispatch(caller: Caller, shipment_id: str) -> ShipmentView:
    tracking = f"AP{hashlib.sha256(shipment_id.encode()).hexdigest()[:10].upper()}"
    return _advance(caller, shipment_id, expected="CREATED", status="DISPATCHED", event_type="ShippingDispatched",
                    fields={"carrier": CARRIER, "trackingNumber": tracking},
                    data=lambda s: ShippingDispatched(shipment_id=shipment_id, order_id=s.order_id,
                                                      user_id=s.user_id, carrier=CARRIER, tracking_number=tracking))


def deliver(caller: Caller, shipment_id: str) -> ShipmentView:
    """Carrier webhook (admin credentials)."""
    delivered_at = datetime.now(timezone.utc)
    return _advance(caller, shipment_id, expected="DISPATCHED", status="DELIVERED", event_type="ShippingDelivered",
                    fields={"deliveredAt": delivered_at.isoformat()},
                    data=lambda s: ShippingDelivered(shipment_id=shipment_id, order_id=s.order_id,
                                                     user_id=s.user_id, delivered_at=delivered_at))
