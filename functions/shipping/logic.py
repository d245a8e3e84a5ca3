"""Shipments: created when an order is confirmed; CREATED -> DISPATCHED -> DELIVERED, or CANCELLED.

Shipping holds the parcel, so it decides cancel vs dispatch for a paid order: a cancellation
request cancels a parcel that has not left (ShippingCancelled; the order is then cancelled) and
is refused once it has; an admin's dispatch of a cancelled parcel is a 409. Events about an
order may arrive in any order: they are merged into the fulfilment record first.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shopstream import personal
from shopstream.envelope import event_from_event
from shopstream.events import (
    OrderCancellationRequested,
    OrderCancelled,
    OrderConfirmed,
    OrderCreatedV1,
    OrderCreatedV2,
    ShippingCancelled,
    ShippingCreatedV2,
    ShippingDelivered,
    ShippingDispatched,
)
from shopstream.inbound import InboundEvent, PoisonRecord
from shopstream.observability import logger
from shopstream.request import Caller, Conflict, commit
from shopstream.transaction import UnitOfWork, retry_on_conflict

from . import store
from .models import ShipmentView

SERVICE = "shipping"
CARRIER = "An Post"


def get(caller: Caller, shipment_id: str) -> ShipmentView:
    """The parcel, with its address opened (for the label); no address once the customer was erased."""
    item = store.get_shipment(shipment_id)
    caller.require_owner(item["userId"] if item else None, "shipment not found")
    assert item is not None
    try:
        address = personal.reveal(item.get("address"), "address")
    except personal.Unreadable:
        address = None
    return ShipmentView.model_validate({**item, "address": address})


def get_for_order(caller: Caller, order_id: str) -> ShipmentView:
    return get(caller, store.shipment_id_for(order_id))


def on_order_event(event: InboundEvent) -> None:
    """Merge what the event says about the order, then do what the merged facts call for."""
    data = event.data
    match data:
        case OrderCreatedV1() | OrderCreatedV2():
            # The address is kept sealed for the customer, as v2 carries it (a v1 one is sealed here).
            fact: dict[str, Any] = {"address": personal.keep(data.shipping_address, data.user_id, "address"),
                                    "items": tuple({"productId": i.product_id, "quantity": i.quantity}
                                                   for i in data.items)}
        case OrderConfirmed():
            fact = {"confirmed": True}
        case OrderCancelled():
            fact = {"cancelled": True}
        case OrderCancellationRequested():
            fact = {"cancellation_requested": True}
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    retry_on_conflict(lambda: _fulfil(event, data.order_id, {"user_id": data.user_id, **fact}),
                      what=f"fulfilment of {data.order_id}")


def _fulfil(event: InboundEvent, order_id: str, fact: dict[str, Any]) -> None:
    read = store.get_fulfilment(order_id)
    merged = read.merged(**fact)
    shipment_id = store.shipment_id_for(order_id)
    uow = UnitOfWork()
    if merged.cancelled or merged.cancellation_requested:
        merged = _give_up(event, uow, merged, shipment_id)
    elif merged.status == "AWAITING_PAYMENT" and merged.confirmed and merged.items is not None:
        shipment = {"shipmentId": shipment_id, "orderId": order_id, "userId": merged.user_id,
                    "address": merged.address, "items": list(merged.items)}
        merged = replace(merged, status="SHIPMENT_CREATED")
        store.create_shipment(uow, shipment)
        # v2: without the address (no consumer needs it).
        uow.emit(event_from_event(event.envelope, event_type="ShippingCreated", service=SERVICE,
                                  data=ShippingCreatedV2.model_validate(shipment)))
    if merged == read:
        return  # nothing new (a duplicate, or a fact we already had)
    store.save_fulfilment(uow, merged, read.version)
    uow.commit()


def _give_up(event: InboundEvent, uow: UnitOfWork, fulfilment: store.Fulfilment,
             shipment_id: str) -> store.Fulfilment:
    """A cancelled order, or a request to cancel a paid one: the parcel is cancelled unless it left. Returns the
    fulfilment after it.

    The shipment's own conditional status change decides a race with an admin's dispatch.
    """
    requested = fulfilment.cancellation_requested and not fulfilment.request_answered
    if fulfilment.status == "SHIPMENT_CREATED":
        shipment = store.get_shipment(shipment_id)
        if shipment is None:
            raise RuntimeError(f"{shipment_id} is not stored though its fulfilment says it was created")
        if shipment["status"] == "CREATED":
            store.move_shipment(uow, shipment_id, "CREATED", "CANCELLED")
        elif shipment["status"] in ("DISPATCHED", "DELIVERED"):
            if fulfilment.cancelled:
                logger().error("an order was cancelled after its parcel left", extra={"shipmentId": shipment_id})
            return replace(fulfilment, request_answered=True)  # refused: the order ships (ShippingDispatched)
    elif fulfilment.status == "CANCELLED" and not requested:
        return fulfilment
    if not requested:
        return replace(fulfilment, status="CANCELLED")
    uow.emit(event_from_event(event.envelope, event_type="ShippingCancelled", service=SERVICE,
                              data=ShippingCancelled(shipment_id=shipment_id, order_id=fulfilment.order_id,
                                                     user_id=fulfilment.user_id, reason="customer_request")))
    return replace(fulfilment, status="CANCELLED", request_answered=True)


def _advance(caller: Caller, shipment_id: str, *, expected: str, status: str, event_type: str,
             fields: dict, data) -> ShipmentView:
    """An admin moves a shipment one step, with the event it causes, in one transaction."""
    shipment = get(caller, shipment_id)
    if shipment.status != expected:
        raise Conflict(f"a {shipment.status} shipment cannot become {status}")
    uow = UnitOfWork()
    store.move_shipment(uow, shipment_id, expected, status, **fields)
    uow.emit(caller.command(event_type, data(shipment), SERVICE))
    commit(uow, status=200, conflict="the shipment changed meanwhile")
    return get(caller, shipment_id)


def dispatch(caller: Caller, shipment_id: str) -> ShipmentView:
    tracking = f"AP{hashlib.sha256(shipment_id.encode()).hexdigest()[:10].upper()}"
    return _advance(caller, shipment_id, expected="CREATED", status="DISPATCHED", event_type="ShippingDispatched",
                    fields={"carrier": CARRIER, "trackingNumber": tracking},
                    data=lambda s: ShippingDispatched(shipment_id=shipment_id, order_id=s.order_id,
                                                      user_id=s.user_id, carrier=CARRIER, tracking_number=tracking))


def deliver(caller: Caller, shipment_id: str) -> ShipmentView:
    """Carrier webhook (admin credentials)."""
    delivered_at = datetime.now(UTC)
    return _advance(caller, shipment_id, expected="DISPATCHED", status="DELIVERED", event_type="ShippingDelivered",
                    fields={"deliveredAt": delivered_at.isoformat()},
                    data=lambda s: ShippingDelivered(shipment_id=shipment_id, order_id=s.order_id,
                                                     user_id=s.user_id, delivered_at=delivered_at))
