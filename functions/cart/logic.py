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
from shopstream.inbound import InboundEvent, PoisonRecord
from shopstream.request import Caller, Conflict, Unprocessable, commit
from shopstream.transaction import ConditionFailed, UnitOfWork, commit_in_batches, retry_on_conflict, try_commit

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
    if caller.repeat_of_bound_request and (made := store.get(cart["cartId"])) is not None:
        return CartView.model_validate(made)  # this very request created it (its Idempotency-Key's binding)
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
    uow = UnitOfWork()
    _close_in(uow, cart, status=status, envelope_for=envelope_for)
    try_commit(uow)  # changed meanwhile (in use again: not abandoned) or closed meanwhile


def _close_in(uow: UnitOfWork, cart: dict[str, Any], *, status: str, envelope_for) -> None:
    at = _now()
    store.close(uow, cart, status, at)
    uow.emit(envelope_for(cart, at))


def _change_carts(carts: list[dict[str, Any]], change: Callable[[UnitOfWork, dict[str, Any]], None], *,
                  what: str) -> None:
    """``change`` each open cart as read, as many per transaction as fit. A cart that changed since the
    read fails its transaction; each cart of it is then read again and changed on its own."""
    parts = []
    for cart in carts:
        part = UnitOfWork()
        change(part, cart)
        parts.append(part)
    for index in commit_in_batches(parts):
        cart_id = carts[index]["cartId"]
        retry_on_conflict(partial(_change_current, cart_id, change), what=f"{what} {cart_id}")


def _change_current(cart_id: str, change: Callable[[UnitOfWork, dict[str, Any]], None], *,
                    open_only: bool = True) -> None:
    """``change`` the cart as it is now, if it still exists (and, with ``open_only``, is still open)."""
    cart = store.get(cart_id)
    if cart is not None and (cart["status"] == "OPEN" or not open_only):  # else: closed or deleted meanwhile
        uow = UnitOfWork()
        change(uow, cart)
        uow.commit()


def on_order_created(event: InboundEvent) -> None:
    match event.data:
        case OrderCreated() as data:
            pass
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    if not data.cart_id:
        return
    checked_out = _updated(event.envelope, "CHECKED_OUT")

    def check_out(uow: UnitOfWork, cart: dict[str, Any]) -> None:
        if cart["userId"] == data.user_id:  # an order never closes someone else's cart
            _close_in(uow, cart, status="CHECKED_OUT", envelope_for=checked_out)

    # A cart changed while it is closed (lines replaced, a product withdrawn) is read again and closed:
    # the order used it, so it must not stay open to be reused or reminded of.
    retry_on_conflict(partial(_change_current, data.cart_id, check_out), what=f"checking out cart {data.cart_id}")


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
            closed = _updated(event.envelope, "ABANDONED")
            _change_carts(store.open_carts_of(user_id), partial(_close_in, status="ABANDONED", envelope_for=closed),
                          what="closing the cart")
        case UserErased(user_id=user_id):
            erase(user_id, at=event.envelope.timestamp.isoformat())
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def erase(user_id: str, at: str) -> int:
    """Delete every cart of the customer. The mark and the deletions are decided from one read of the
    customer's carts: the mark goes in the first transaction, on condition that no cart was created
    since the read (else read again), and from then on no cart is created for them. Erasing again
    deletes nothing."""
    return retry_on_conflict(partial(_erase, user_id, at), what=f"erasing the carts of {user_id}") or 0


def _erase(user_id: str, at: str) -> int:
    state, cart_ids = store.owner(user_id)
    carts = store.get_many(cart_ids)
    found = [carts[cart_id] for cart_id in sorted(cart_ids) if cart_id in carts]
    mark = UnitOfWork()
    if not (state and state.get("erasedAt")):  # else marked before: a redelivery, or carts left by a failure
        store.mark_erased(mark, user_id, state, at)
    parts = [mark]
    for cart in found:
        parts.append(UnitOfWork())
        store.delete(parts[-1], cart)
    not_committed = commit_in_batches(parts)
    if 0 in not_committed:  # a cart created or changed since the read: all of it again
        raise ConditionFailed([])
    for index in not_committed:  # changed after the mark went in
        cart_id = found[index - 1]["cartId"]
        retry_on_conflict(partial(_change_current, cart_id, store.delete, open_only=False),
                          what=f"erasing cart {cart_id}")
    return len(cart_ids)


def on_product_event(event: InboundEvent) -> None:
    """A discontinued product leaves every open cart: the carts it is in (its index: one query, one
    batch read), changed together, a CartUpdated each."""
    match event.data:
        case ProductDiscontinued(product_id=product_id):
            pass
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
    remove = partial(_remove_product, product_id=product_id, cause=event.envelope)
    _change_carts(store.open_carts_with(product_id), remove, what=f"withdrawing {product_id} from")


def _remove_product(uow: UnitOfWork, cart: dict[str, Any], *, product_id: str, cause: EventEnvelope) -> None:
    items = [line for line in cart["items"] if line["productId"] != product_id]
    if items == cart["items"]:
        return  # it already left this cart
    store.replace_items(uow, cart, items, _now())
    uow.emit(event_from_event(cause, event_type="CartUpdated", service=SERVICE,
                              data=CartUpdated(cart_id=cart["cartId"], user_id=cart["userId"], items=items,
                                               version=cart["version"] + 1)))


def sweep_abandoned(now: datetime | None = None) -> int:
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=settings().cart_abandon_after_seconds)
    carts = store.open_carts(idle_before=cutoff.isoformat(timespec="milliseconds"))
    for cart in carts:
        _close(cart, "ABANDONED", _abandoned)
    return len(carts)
