"""Carts: OPEN -> CHECKED_OUT (the order that used it) | ABANDONED (idle too long, or user deactivated).

An erased customer's carts are deleted, and none is created for them afterwards (a marker checked in
the creating transaction), so erasure reaches every cart whatever the order of events and requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from shopstream.consumer import InboundEvent, PoisonRecord
from shopstream.envelope import EventEnvelope, event_from_command, event_from_event
from shopstream.events import (
    CartAbandoned,
    CartCreated,
    CartStatus,
    CartUpdated,
    ItemQuantity,
    OrderCreated,
    ProductDiscontinued,
    UserDeactivated,
    UserErased,
)
from shopstream.request import Caller, Conflict, Unprocessable, commit
from shopstream.transaction import ConditionFailed, UnitOfWork, retry_on_conflict, try_commit

from . import store
from .models import CartItems, CartView
from .settings import settings

SERVICE = "cart"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _items(items: list[ItemQuantity]) -> list[dict[str, Any]]:
    return [i.to_wire() for i in items]


def create(caller: Caller, body: CartItems) -> CartView:
    cart: dict[str, Any] = {"cartId": caller.derived_id("c_"), "userId": caller.user_id, "items": _items(body.items),
            "status": "OPEN", "version": 1, "updatedAt": _now()}
    uow = UnitOfWork()
    store.create(uow, cart)
    uow.emit(caller.command("CartCreated", CartCreated(cart_id=cart["cartId"], user_id=caller.user_id,
                                                       items=body.items), SERVICE))
    try:
        commit(uow, status=201)
    except ConditionFailed:
        if store.erased(caller.user_id):
            raise Unprocessable("this account was erased") from None
        # Created before under this Idempotency-Key (its response was lost): that cart.
        return get(caller, cart["cartId"])
    return CartView.model_validate(cart)


def get(caller: Caller, cart_id: str) -> CartView:
    cart = store.get(cart_id)
    caller.require_owner(cart["userId"] if cart else None, "cart not found")
    return CartView.model_validate(cart)


def replace_items(caller: Caller, cart_id: str, body: CartItems) -> CartView:
    cart = store.get(cart_id)
    caller.require_owner(cart["userId"] if cart else None, "cart not found")
    assert cart is not None
    if cart["status"] != "OPEN":
        raise Conflict(f"the cart is {cart['status']}")
    at = _now()
    uow = UnitOfWork()
    store.replace_items(uow, cart, _items(body.items), at)
    uow.emit(caller.command("CartUpdated", CartUpdated(cart_id=cart_id, user_id=cart["userId"], items=body.items,
                                                       version=cart["version"] + 1), SERVICE))
    commit(uow, status=200, conflict="the cart changed meanwhile; retry")
    return get(caller, cart_id)


def _close(cart: dict[str, Any], status: str, envelope_for) -> None:
    at = _now()
    uow = UnitOfWork()
    store.close(uow, cart, status, at)
    uow.emit(envelope_for(cart, at))
    try_commit(uow)  # changed or closed meanwhile


def on_order_created(event: InboundEvent) -> None:
    match event.data:
        case OrderCreated() as data:
            pass
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    cart = store.get(data.cart_id) if data.cart_id else None
    if cart is None or cart["status"] != "OPEN" or cart["userId"] != data.user_id:
        return
    _close(cart, "CHECKED_OUT", _updated(event.envelope, "CHECKED_OUT"))


def _updated(parent: EventEnvelope, status: CartStatus) -> Callable[[dict[str, Any], str], EventEnvelope]:
    def envelope(cart: dict[str, Any], at: str) -> EventEnvelope:
        return event_from_event(parent, event_type="CartUpdated", service=SERVICE,
                                data=CartUpdated(cart_id=cart["cartId"], user_id=cart["userId"], items=cart["items"],
                                                 status=status, version=cart["version"] + 1))
    return envelope


def _abandoned(cart: dict[str, Any], at: str) -> EventEnvelope:
    """Idle past the threshold: the reminder's cause."""
    data = CartAbandoned(cart_id=cart["cartId"], user_id=cart["userId"], items=cart["items"],
                         last_activity_at=cart["updatedAt"])
    return event_from_command(event_type="CartAbandoned", data=data, service=SERVICE,
                              correlation_id=str(uuid.uuid4()), user_id=cart["userId"])


def on_user_event(event: InboundEvent) -> None:
    """A deactivated customer's carts close quietly (CartUpdated, not CartAbandoned: no reminder); an
    erased customer's are deleted."""
    match event.data:
        case UserDeactivated(user_id=user_id):
            for cart in store.open_carts_of(user_id):
                _close(cart, "ABANDONED", _updated(event.envelope, "ABANDONED"))
        case UserErased(user_id=user_id):
            erase(user_id, at=event.envelope.timestamp.isoformat())
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def erase(user_id: str, at: str) -> int:
    """Delete every cart of the customer. The marker comes first: a cart created after it is refused, one
    created before it is in the (consistent) index read after it. Deleting again deletes nothing."""
    marker = UnitOfWork()
    store.mark_erased(marker, user_id, at)
    try_commit(marker)  # marked before: a redelivery or a replay
    cart_ids = sorted(store.carts_of(user_id))  # written with each cart, in the same transaction
    carts = store.get_many(cart_ids)
    for cart_id in cart_ids:
        if cart_id in carts:
            uow = UnitOfWork()
            store.delete(uow, carts[cart_id])
            if not try_commit(uow):  # its lines changed since the read: read it again
                retry_on_conflict(partial(_delete_current, cart_id), what=f"erasing cart {cart_id}")
    return len(cart_ids)


def _delete_current(cart_id: str) -> None:
    cart = store.get(cart_id)
    if cart is not None:
        uow = UnitOfWork()
        store.delete(uow, cart)
        uow.commit()


# Carts updated per transaction when a product is withdrawn: each is 3 actions (the cart, its event,
# its index entry), well inside DynamoDB's 100.
CARTS_PER_TRANSACTION = 25


def on_product_event(event: InboundEvent) -> None:
    """A discontinued product leaves every open cart: the carts it is in (its index: one query, one
    batch read), updated together, a CartUpdated each. A cart that changed meanwhile is done again
    on its own from a fresh read."""
    match event.data:
        case ProductDiscontinued(product_id=product_id):
            pass
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    carts = store.open_carts_with(product_id)
    for start in range(0, len(carts), CARTS_PER_TRANSACTION):
        chunk = carts[start:start + CARTS_PER_TRANSACTION]
        uow = UnitOfWork()
        for cart in chunk:
            _remove_product(uow, cart, product_id, event.envelope)
        if not try_commit(uow):  # one of them changed since the read: each again, on its own
            for cart_id in (cart["cartId"] for cart in chunk):
                retry_on_conflict(partial(_remove_product_again, cart_id, product_id, event.envelope),
                                  what=f"withdrawing {product_id} from cart {cart_id}")


def _remove_product(uow: UnitOfWork, cart: dict[str, Any], product_id: str, cause: EventEnvelope) -> None:
    items = [line for line in cart["items"] if line["productId"] != product_id]
    store.replace_items(uow, cart, items, _now())
    uow.emit(event_from_event(cause, event_type="CartUpdated", service=SERVICE,
                              data=CartUpdated(cart_id=cart["cartId"], user_id=cart["userId"], items=items,
                                               version=cart["version"] + 1)))


def _remove_product_again(cart_id: str, product_id: str, cause: EventEnvelope) -> None:
    cart = store.get(cart_id)
    if cart is None or cart["status"] != "OPEN" or all(line["productId"] != product_id for line in cart["items"]):
        return  # closed, deleted, or the product already left it
    uow = UnitOfWork()
    _remove_product(uow, cart, product_id, cause)
    uow.commit()


def sweep_abandoned(now: datetime | None = None) -> int:
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=settings().cart_abandon_after_seconds)
    carts = store.open_carts(idle_before=cutoff.isoformat(timespec="milliseconds"))
    for cart in carts:
        _close(cart, "ABANDONED", _abandoned)
    return len(carts)
