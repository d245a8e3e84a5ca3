"""The order saga (choreography): this service keeps each order's state and reacts to the others.

PENDING --InventoryReserved--> (stock held) --PaymentProcessed--> CONFIRMED --ShippingDispatched--> SHIPPED
  --ShippingDelivered--> DELIVERED;  CANCELLED on InventoryReservationFailed (out_of_stock),
PaymentFailed (payment_declined), customer cancel before dispatch (customer_request), or the
timeout sweeper (timeout). Inventory releases stock and payment refunds on OrderCancelled.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from shopstream.api import Caller, Conflict, NotFound, Unprocessable, commit
from shopstream.config import get_settings
from shopstream.consumer import InboundEvent
from shopstream.envelope import EventEnvelope, event_from_command, event_from_event
from shopstream.events import ItemQuantity, Money, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine, OrderShipped
from shopstream.observability import logger
from shopstream.outbox import ConditionFailed, UnitOfWork

from . import aggregate, store
from .aggregate import Change, Order
from .models import OrderAccepted, OrderHistory, OrderView, PlaceOrder

SERVICE = "order"
MAX_ATTEMPTS = 10


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def view(order: Order) -> OrderView:
    return OrderView.model_validate({**order.__dict__, "items": list(order.items)})


def _apply(order: Order, changes: list[Change], outgoing: list[EventEnvelope], *, status: int | None = None) -> Order:
    """Append the changes and the events they cause in one transaction."""
    at = _now()
    after = order
    for change in changes:
        after = aggregate.evolve(after, change, at)
    uow = UnitOfWork()
    store.append(uow, order, [(c, at) for c in changes], after)
    for envelope in outgoing:
        uow.emit(envelope)
    if status is None:
        uow.commit()
    else:
        commit(uow, status=status)
    return after


# --- commands (API) ----------------------------------------------------------------------
def place(caller: Caller, body: PlaceOrder) -> OrderAccepted:
    user = store.get_replica("USER", caller.user_id)
    if user is None or user.get("status") != "ACTIVE":
        raise Unprocessable("register a profile (POST /users) before ordering; deactivated users cannot order")
    quantities: dict[str, int] = {}
    for item in body.items:
        quantities[item.product_id] = quantities.get(item.product_id, 0) + item.quantity
    products = store.get_product_replicas(list(quantities))
    lines = []
    for product_id, quantity in quantities.items():
        product = products.get(product_id)
        if product is None or product.get("status") != "ACTIVE":
            raise Unprocessable(f"product {product_id} is not available")
        lines.append(OrderLine(product_id=product_id, quantity=quantity, unit_price=product["price"]))
    currencies = {line.unit_price.currency for line in lines}
    if len(currencies) != 1:
        raise Unprocessable("all items of an order must be priced in one currency")
    total = Money(amount=sum(line.unit_price.amount * line.quantity for line in lines), currency=currencies.pop())
    order_id = f"o_{uuid.uuid4().hex[:20]}"
    deadline = (datetime.now(timezone.utc) + timedelta(seconds=get_settings().order_saga_timeout_seconds)).isoformat(
        timespec="milliseconds")
    created = OrderCreated(order_id=order_id, user_id=caller.user_id, items=lines, total=total,
                           payment_method=body.payment_method, shipping_address=body.shipping_address,
                           cart_id=body.cart_id)
    placed = Change("Placed", {**created.model_dump(mode="json", by_alias=True, exclude_none=True),
                               "correlationId": caller.correlation_id, "deadline": deadline})
    _apply(Order(order_id=order_id), [placed], [caller.command("OrderCreated", created, SERVICE)], status=202)
    return OrderAccepted(order_id=order_id, status="PENDING", correlation_id=caller.correlation_id)


def get(caller: Caller, order_id: str) -> OrderView:
    order = store.load(order_id)
    caller.require_owner(order.user_id or None, "order not found")
    return view(order)


def history(caller: Caller, user_id: str) -> OrderHistory:
    caller.require_owner(user_id, "user not found")
    user = store.get_replica("USER", user_id)
    orders = [view(order) for order in store.orders_of(user_id)]
    return OrderHistory(user_id=user_id, customer_name=user.get("name") if user else None, orders=orders)


def cancel_by_customer(caller: Caller, order_id: str) -> OrderView:
    order = store.load(order_id)
    caller.require_owner(order.user_id or None, "order not found")
    changes = aggregate.cancel(order, "customer_request")
    if not changes:
        raise Conflict(f"an order that is {order.status} can no longer be cancelled")
    envelope = caller.command("OrderCancelled", _cancelled(order, "customer_request"), SERVICE)
    try:
        return view(_apply(order, changes, [envelope], status=202))
    except ConditionFailed:
        raise Conflict("the order changed meanwhile; retry") from None


def _cancelled(order: Order, reason: str) -> OrderCancelled:
    return OrderCancelled(order_id=order.order_id, user_id=order.user_id, reason=reason,
                          previous_status=order.status,
                          items=[ItemQuantity(product_id=i["productId"], quantity=i["quantity"]) for i in order.items])


# --- reactions (events) ---------------------------------------------------------------------
def _react(event: InboundEvent, order_id: str, decide) -> None:
    """Load, decide, append; retried on a concurrent change. No change = nothing to do."""
    for _ in range(MAX_ATTEMPTS):
        order = store.load(order_id)
        if order.version == 0:
            logger().warning("event for an unknown order ignored", extra={"orderId": order_id})
            return
        decision = decide(order)
        if not decision:
            logger().info("event does not fit the order's state; ignored",
                          extra={"orderId": order_id, "status": order.status, "eventType": event.event_type})
            return
        changes, outgoing = decision
        try:
            _apply(order, changes, outgoing)
            return
        except ConditionFailed:
            continue
    raise RuntimeError(f"order {order_id} kept changing under us")


def _derived(event: InboundEvent, event_type: str, data: Any) -> EventEnvelope:
    return event_from_event(event.envelope, event_type=event_type, data=data, service=SERVICE)


def on_inventory_event(event: InboundEvent) -> None:
    data = event.data
    if event.event_type == "InventoryReserved":
        _react(event, data.order_id, lambda o: (c, []) if (c := aggregate.stock_reserved(o)) else None)
    else:
        _react(event, data.order_id, lambda o: (c, [_derived(event, "OrderCancelled", _cancelled(o, "out_of_stock"))])
               if (c := aggregate.cancel(o, "out_of_stock")) else None)


def on_payment_event(event: InboundEvent) -> None:
    data = event.data
    if event.event_type == "PaymentProcessed":
        def decide(o: Order):
            changes = aggregate.confirm(o, data.payment_id)
            return (changes, [_derived(event, "OrderConfirmed", OrderConfirmed(
                order_id=o.order_id, user_id=o.user_id, payment_id=data.payment_id, total=o.total))]) if changes else None
        _react(event, data.order_id, decide)
    elif event.event_type == "PaymentFailed":
        _react(event, data.order_id, lambda o: (c, [_derived(event, "OrderCancelled", _cancelled(o, "payment_declined"))])
               if (c := aggregate.cancel(o, "payment_declined")) else None)
    else:
        _react(event, data.order_id, lambda o: (c, []) if (c := aggregate.refunded(o)) else None)


def on_shipping_event(event: InboundEvent) -> None:
    data = event.data
    if event.event_type == "ShippingCreated":
        _react(event, data.order_id, lambda o: (c, []) if (c := aggregate.shipment_created(o, data.shipment_id)) else None)
    elif event.event_type == "ShippingDispatched":
        def decide(o: Order):
            changes = aggregate.shipped(o, data.shipment_id)
            return (changes, [_derived(event, "OrderShipped", OrderShipped(
                order_id=o.order_id, user_id=o.user_id, shipment_id=data.shipment_id, carrier=data.carrier,
                tracking_number=data.tracking_number))]) if changes else None
        _react(event, data.order_id, decide)
    else:
        _react(event, data.order_id, lambda o: (c, []) if (c := aggregate.delivered(o)) else None)


def on_user_event(event: InboundEvent) -> None:
    data = event.data
    fields: dict[str, Any] = {}
    if event.event_type == "UserRegistered":
        fields = {"email": data.email, "name": data.name, "status": "ACTIVE"}
    elif event.event_type == "UserUpdated":
        fields = {k: v for k, v in (("email", data.email), ("name", data.name)) if v is not None}
    else:
        fields = {"status": "DEACTIVATED"}
    _replicate("USER", data.user_id, data.version, fields)


def on_product_event(event: InboundEvent) -> None:
    data = event.data
    if event.event_type == "ProductCreated":
        fields = {"name": data.name, "price": data.price.to_wire(), "status": "ACTIVE"}
    elif event.event_type == "ProductUpdated":
        fields = {k: v for k, v in (("name", data.name), ("price", data.price.to_wire() if data.price else None))
                  if v is not None}
    else:
        fields = {"status": "DISCONTINUED"}
    _replicate("PRODUCT", data.product_id, data.version, fields)


def _replicate(kind: str, entity_id: str, version: int, fields: dict[str, Any]) -> None:
    uow = UnitOfWork()
    store.put_replica(uow, kind, entity_id, version, fields)
    try:
        uow.commit()
    except ConditionFailed:
        pass  # we already hold this version or a newer one


# --- schedule -------------------------------------------------------------------------------
def sweep_timeouts(now: datetime | None = None) -> int:
    """Cancel PENDING orders past their deadline (a saga never hangs)."""
    now_iso = (now or datetime.now(timezone.utc)).isoformat(timespec="milliseconds")
    cancelled = 0
    for order_id in store.overdue(now_iso):
        order = store.load(order_id)
        changes = aggregate.cancel(order, "timeout")
        if not changes or order.status != "PENDING":
            continue
        envelope = event_from_command(event_type="OrderCancelled", data=_cancelled(order, "timeout"),
                                      service=SERVICE, correlation_id=order.correlation_id, user_id=order.user_id)
        try:
            _apply(order, changes, [envelope])
            cancelled += 1
        except ConditionFailed:
            continue  # it moved on meanwhile
    return cancelled
