"""The order saga (choreography): this service keeps each order's state and reacts to the others.

PENDING --InventoryReserved + PaymentAuthorised, whichever comes last--> CONFIRMED --ShippingDispatched-->
  SHIPPED --ShippingDelivered--> DELIVERED;  CANCELLED on InventoryReservationFailed (out_of_stock),
PaymentFailed (payment_declined), customer cancel before dispatch (customer_request), or the
timeout sweeper (timeout). Inventory releases stock and payment voids or refunds on OrderCancelled.
The stock and the authorisation are sought side by side; payment captures after the reservation, off the
order's path (PaymentProcessed, which also stands for the authorisation if it comes first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shopstream import long_poll, personal, tracing
from shopstream.envelope import EventEnvelope, event_from_command, event_from_event
from shopstream.events import (
    CancellationReason,
    InventoryReservationFailed,
    InventoryReserved,
    ItemQuantity,
    Money,
    OrderCancellationRequested,
    OrderCancelled,
    OrderConfirmed,
    OrderCreatedV2,
    OrderLine,
    OrderShipped,
    PaymentAuthorised,
    PaymentFailed,
    PaymentProcessed,
    PaymentRefunded,
    ProductCreated,
    ProductDiscontinued,
    ProductUpdated,
    ShippingCancelled,
    ShippingCreated,
    ShippingDelivered,
    ShippingDispatched,
    UserDeactivated,
    UserErased,
    UserRegisteredV1,
    UserRegisteredV2,
    UserUpdatedV1,
    UserUpdatedV2,
)
from shopstream.inbound import InboundEvent, PoisonRecord
from shopstream.observability import logger
from shopstream.request import Caller, Conflict, Unprocessable, commit, respond_with_header
from shopstream.transaction import ConditionFailed, UnitOfWork, retry_on_conflict

from . import aggregate, store
from .aggregate import Change, Order
from .models import OrderAccepted, OrderHistory, OrderView, PlaceOrder
from .settings import settings

SERVICE = "order"
MAX_ATTEMPTS = 10


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _opened(value: Any, kind: personal.PersonalKind) -> Any:
    """A stored personal value for the customer or an admin: opened; None once the customer was erased."""
    try:
        return personal.reveal(value, kind)
    except personal.Unreadable:
        return None


def view(order: Order) -> OrderView:
    return OrderView.model_validate({**order.__dict__, "items": list(order.items),
                                     "shipping_address": _opened(order.shipping_address or None, "address")})


def _append(order: Order, changes: list[Change], outgoing: list[EventEnvelope]) -> tuple[UnitOfWork, Order]:
    """The transaction that appends the changes and the events they cause, and the order after it."""
    at = _now()
    after = order
    for change in changes:
        after = aggregate.evolve(after, change, at)
    uow = UnitOfWork()
    store.append(uow, order, [(c, at) for c in changes], after)
    for envelope in outgoing:
        uow.emit(envelope)
    return uow, after


def _apply(order: Order, changes: list[Change], outgoing: list[EventEnvelope]) -> Order:
    """A reaction to an event: append and commit."""
    uow, after = _append(order, changes, outgoing)
    uow.commit()
    return after


def _apply_command(order: Order, changes: list[Change], outgoing: list[EventEnvelope], *, status: int) -> Order:
    """An API command: append and commit with the audit record of the call."""
    uow, after = _append(order, changes, outgoing)
    commit(uow, status=status)
    return after


# --- commands (API) ----------------------------------------------------------------------
def place(caller: Caller, body: PlaceOrder) -> OrderAccepted:
    if caller.repeat_of_bound_request:  # this very request placed it (its Idempotency-Key's binding): that order
        made = store.load(caller.derived_id("o_"))
        if made.user_id == caller.user_id:
            return OrderAccepted(order_id=made.order_id, status=made.status, correlation_id=made.correlation_id)
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
    order_id = caller.derived_id("o_")
    deadline = (datetime.now(UTC) + timedelta(seconds=settings().order_saga_timeout_seconds)).isoformat(
        timespec="milliseconds")
    try:  # the address travels and is stored sealed for the customer (only shipping opens it)
        address = personal.seal(caller.user_id, "address", body.shipping_address.to_wire())
    except personal.Unreadable:
        raise Unprocessable("this customer has no key: they were erased") from None
    created = OrderCreatedV2(order_id=order_id, user_id=caller.user_id, items=lines, total=total,
                             payment_method=body.payment_method, shipping_address=address, cart_id=body.cart_id)
    placed = Change("Placed", {**created.model_dump(mode="json", by_alias=True, exclude_none=True),
                               "correlationId": caller.correlation_id, "deadline": deadline,
                               **({"traceId": trace_id} if (trace_id := tracing.current_trace_id()) else {})})
    try:
        _apply_command(Order(order_id=order_id), [placed], [caller.command("OrderCreated", created, SERVICE)],
                       status=202)
    except ConditionFailed:
        # The same Idempotency-Key placed it before (its response was lost with a crash): that order.
        existing = store.load(order_id)
        if existing.user_id != caller.user_id:
            raise
        return OrderAccepted(order_id=order_id, status=existing.status, correlation_id=existing.correlation_id)
    return OrderAccepted(order_id=order_id, status="PENDING", correlation_id=caller.correlation_id)


def get(caller: Caller, order_id: str) -> OrderView:
    order = store.load(order_id)
    caller.require_owner(order.user_id or None, "order not found")
    respond_with_header(tracing.TRACE_ID_HEADER, order.trace_id)  # the order's trace, for `make ops ARGS="trace"`
    return view(order)


# The waiting's clock and sleep (tests replace them).
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], object] = time.sleep


def await_status(caller: Caller, order_id: str, awaited: frozenset[str],
                 seconds: float) -> tuple[OrderView, long_poll.Outcome]:
    """The order once its status is an awaited one or can no longer become one, or after ``seconds``: read
    again (consistently) at long_poll's backoff. Someone else's order is not found at once, as for get."""
    order = store.load(order_id)
    caller.require_owner(order.user_id or None, "order not found")
    order = long_poll.wait(lambda: store.load(order_id),
                           lambda current: aggregate.wait_outcome(current.status, awaited) is not None,
                           seconds=seconds, clock=clock, sleep=sleep, first=order)
    respond_with_header(tracing.TRACE_ID_HEADER, order.trace_id)  # as get does
    return view(order), aggregate.wait_outcome(order.status, awaited) or "timeout"


def history(caller: Caller, user_id: str, limit: int, cursor: str | None) -> OrderHistory:
    caller.require_owner(user_id, "user not found")
    user = store.get_replica("USER", user_id)
    orders, next_cursor = store.orders_of(user_id, limit, cursor)
    return OrderHistory(user_id=user_id, customer_name=_opened(user.get("name"), "name") if user else None,
                        orders=[view(order) for order in orders], next_cursor=next_cursor)


def cancel_by_customer(caller: Caller, order_id: str) -> OrderView:
    """PENDING: cancelled now. CONFIRMED: shipping is asked to give up the parcel (202 either way);
    the order is cancelled when it has, or ships if the parcel was dispatched first."""

    def attempt() -> Order:
        order = store.load(order_id)
        caller.require_owner(order.user_id or None, "order not found")
        if not aggregate.cancellable(order):
            raise Conflict(f"an order that is {order.status} can no longer be cancelled")
        changes = aggregate.request_cancel(order)
        if not changes:
            return order  # already requested: the same answer again
        if changes[0].kind == "Cancelled":
            event = caller.command("OrderCancelled", _cancelled(order, "customer_request"), SERVICE)
        else:
            event = caller.command("OrderCancellationRequested", OrderCancellationRequested(
                order_id=order.order_id, user_id=order.user_id, reason="customer_request"), SERVICE)
        return _apply_command(order, changes, [event], status=202)

    order = retry_on_conflict(attempt, what=f"cancel order {order_id}", attempts=MAX_ATTEMPTS)
    assert order is not None
    return view(order)


def _cancelled(order: Order, reason: CancellationReason) -> OrderCancelled:
    return OrderCancelled(order_id=order.order_id, user_id=order.user_id, reason=reason,
                          previous_status=order.status,
                          items=[ItemQuantity(product_id=i["productId"], quantity=i["quantity"]) for i in order.items])


# --- reactions (events) ---------------------------------------------------------------------
Decision = tuple[list[Change], list[EventEnvelope]]


def _react(event: InboundEvent, order_id: str, decide: Callable[[Order], Decision]) -> None:
    """Load, decide, append; retried on a concurrent change. No change = nothing to do."""

    def attempt() -> None:
        order = store.load(order_id)
        if order.version == 0:
            logger().warning("event for an unknown order ignored", extra={"orderId": order_id})
            return
        changes, outgoing = decide(order)
        if not changes:
            logger().info("event does not fit the order's state; ignored",
                          extra={"orderId": order_id, "status": order.status, "eventType": event.event_type})
            return
        _apply(order, changes, outgoing)

    retry_on_conflict(attempt, what=f"order {order_id}", attempts=MAX_ATTEMPTS)


def _derived(event: InboundEvent, event_type: str, data: Any) -> EventEnvelope:
    return event_from_event(event.envelope, event_type=event_type, data=data, service=SERVICE)


def decide_cancel(event: InboundEvent, reason: CancellationReason) -> Callable[[Order], Decision]:
    def decide(order: Order) -> Decision:
        changes = aggregate.cancel(order, reason)
        return changes, [_derived(event, "OrderCancelled", _cancelled(order, reason))] if changes else []
    return decide


def decide_fact(event: InboundEvent, transition: Callable[[Order], list[Change]]) -> Callable[[Order], Decision]:
    """A fact the confirmation waits for (the stock, the authorisation): OrderConfirmed if it was the last."""
    def decide(order: Order) -> Decision:
        changes = transition(order)
        confirmed = [c.data["paymentId"] for c in changes if c.kind == "Confirmed"]
        return changes, [_derived(event, "OrderConfirmed", OrderConfirmed(
            order_id=order.order_id, user_id=order.user_id, payment_id=payment_id,
            total=Money.model_validate(order.total))) for payment_id in confirmed]
    return decide


def decide_shipped(event: InboundEvent, dispatched: ShippingDispatched) -> Callable[[Order], Decision]:
    def decide(order: Order) -> Decision:
        changes = aggregate.shipped(order, dispatched.shipment_id)
        return changes, [_derived(event, "OrderShipped", OrderShipped(
            order_id=order.order_id, user_id=order.user_id, shipment_id=dispatched.shipment_id,
            carrier=dispatched.carrier, tracking_number=dispatched.tracking_number))] if changes else []
    return decide


def decide_shipment_cancelled(event: InboundEvent) -> Callable[[Order], Decision]:
    def decide(order: Order) -> Decision:
        changes = aggregate.shipment_cancelled(order)
        return changes, [_derived(event, "OrderCancelled", _cancelled(order, "customer_request"))] if changes else []
    return decide


def quietly(transition: Callable[[Order], list[Change]]) -> Callable[[Order], Decision]:
    """A transition that causes no event of its own."""
    return lambda order: (transition(order), [])


def on_inventory_event(event: InboundEvent) -> None:
    match event.data:
        case InventoryReserved(order_id=order_id):
            _react(event, order_id, decide_fact(event, aggregate.stock_reserved))
        case InventoryReservationFailed(order_id=order_id):
            _react(event, order_id, decide_cancel(event, "out_of_stock"))
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def on_payment_event(event: InboundEvent) -> None:
    match event.data:
        case PaymentAuthorised() | PaymentProcessed() as payment:  # captured: authorised before, surely
            _react(event, payment.order_id,
                   decide_fact(event, lambda order: aggregate.payment_authorised(order, payment.payment_id)))
        case PaymentFailed(order_id=order_id):
            _react(event, order_id, decide_cancel(event, "payment_declined"))
        case PaymentRefunded(order_id=order_id):
            _react(event, order_id, quietly(aggregate.refunded))
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def on_shipping_event(event: InboundEvent) -> None:
    match event.data:
        case ShippingCreated(order_id=order_id, shipment_id=shipment_id):
            _react(event, order_id, quietly(lambda order: aggregate.shipment_created(order, shipment_id)))
        case ShippingDispatched() as dispatched:
            _react(event, dispatched.order_id, decide_shipped(event, dispatched))
        case ShippingDelivered(order_id=order_id):
            _react(event, order_id, quietly(aggregate.delivered))
        case ShippingCancelled(order_id=order_id):
            _react(event, order_id, decide_shipment_cancelled(event))
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def on_user_event(event: InboundEvent) -> None:
    """The user replica: status (who may order) and the name (sealed; order history shows it). Not the
    e-mail address: the order service does not need it. UserErased leaves a tombstone, whatever arrives
    after it."""
    match event.data:
        case UserRegisteredV1() | UserRegisteredV2() as data:
            fields: dict[str, Any] = {"name": personal.keep(data.name, data.user_id, "name"), "status": "ACTIVE"}
        case UserUpdatedV1() | UserUpdatedV2() as data:
            fields = {"name": personal.keep(data.name, data.user_id, "name")}
        case UserDeactivated() as data:
            fields = {"status": "DEACTIVATED"}
        case UserErased(user_id=user_id):
            store.erase_replica("USER", user_id, at=event.envelope.timestamp.isoformat())
            return
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    store.apply_replica("USER", data.user_id, data.version, fields)


def on_product_event(event: InboundEvent) -> None:
    match event.data:
        case ProductCreated() as data:
            fields: dict[str, Any] = {"name": data.name, "price": data.price.to_wire(), "status": "ACTIVE"}
        case ProductUpdated() as data:
            fields = {"name": data.name, "price": data.price.to_wire() if data.price else None}
        case ProductDiscontinued() as data:
            fields = {"status": "DISCONTINUED"}
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    store.apply_replica("PRODUCT", data.product_id, data.version, fields)


# --- schedule -------------------------------------------------------------------------------
def sweep_timeouts(now: datetime | None = None) -> int:
    """Cancel PENDING orders past their deadline (a saga never hangs)."""
    now_iso = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    cancelled = 0
    for order_id in store.overdue(now_iso):
        order = store.load(order_id)
        changes = aggregate.cancel(order, "timeout")
        if not changes:
            continue
        envelope = event_from_command(event_type="OrderCancelled", data=_cancelled(order, "timeout"),
                                      service=SERVICE, correlation_id=order.correlation_id, user_id=order.user_id)
        if try_commit_changes(order, changes, [envelope]):
            cancelled += 1
    return cancelled


def try_commit_changes(order: Order, changes: list[Change], outgoing: list[EventEnvelope]) -> bool:
    try:
        _apply(order, changes, outgoing)
        return True
    except ConditionFailed:
        return False  # it moved on meanwhile
