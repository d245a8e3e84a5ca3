"""Payments: PENDING -> CHARGING -> CAPTURED | FAILED;  CAPTURED -> REFUNDED;  PENDING -> CANCELLED.

A payment merges three facts about its order, in whatever order they arrive: the intent
(OrderCreated: amount and method), stock held (InventoryReserved) and cancelled (OrderCancelled).
It is charged once it has the first two and not the third. CHARGING is committed before the
provider is called, so a cancel that comes while the charge is in flight only marks the payment
cancelled, and whoever finishes the charge refunds it at once. Provider calls are idempotent by
key, so finishing a charge that a crashed attempt started never charges twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shopstream import tracing
from shopstream.envelope import EventEnvelope, event_from_event
from shopstream.events import (
    InventoryReserved,
    OrderCancelled,
    OrderCreated,
    PaymentFailed,
    PaymentInitiated,
    PaymentProcessed,
    PaymentRefunded,
)
from shopstream.inbound import InboundEvent, PoisonRecord
from shopstream.request import Caller
from shopstream.transaction import UnitOfWork, retry_on_conflict

from . import provider as providers
from . import store
from .models import PaymentView

SERVICE = "payment"
PROVIDER_ATTEMPTS = 3


def get(caller: Caller, payment_id: str) -> PaymentView:
    item = store.get(payment_id)
    # A payment known only from a cancellation or a reservation has nothing to show yet.
    caller.require_owner(item.get("userId") if item and "amount" in item else None, "payment not found")
    return PaymentView.model_validate(item)


def on_order_event(event: InboundEvent) -> None:
    match event.data:
        case OrderCreated() as data:
            intent = {"userId": data.user_id, "amount": data.total.to_wire(), "paymentMethod": data.payment_method}
            _advance(event, data.order_id, intent,
                     first_write=lambda payment_id: store.record_intent(payment_id, data.order_id, intent))
        case OrderCancelled() as data:
            _advance(event, data.order_id, {"userId": data.user_id, "cancelled": True})
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def on_stock_reserved(event: InboundEvent) -> None:
    match event.data:
        case InventoryReserved(order_id=order_id):
            _advance(event, order_id, {"stockReserved": True}, first_write=store.claim_on_stock)
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def next_step(payment: dict[str, Any]) -> str | None:
    """What the payment's facts call for next (pure)."""
    match payment["status"]:
        case "PENDING" if payment.get("cancelled"):
            return "cancel"
        case "PENDING" if "amount" in payment and payment.get("stockReserved"):
            return "claim"
        case "CHARGING":
            return "charge"
        case "CAPTURED" if payment.get("cancelled"):
            return "refund"
    return None


def _advance(event: InboundEvent, order_id: str, fact: dict[str, Any],
             first_write: Callable[[str], store.Written] | None = None) -> None:
    """Merge the fact, then take steps until none is left; each step commits on the version it read.

    ``first_write``: the step this fact usually causes, tried as one conditional write before
    anything is read. If it happens, the steps go on from the payment it returns; if not, from the
    payment its failed condition handed back. Either way there is no read first."""
    payment_id = store.payment_id_for(order_id)
    handed_back: list[dict[str, Any] | None] = []
    if first_write is not None:
        written, stored = first_write(payment_id)
        handed_back.append(stored)
        if written:
            fact = {}

    def attempt() -> None:
        read = (handed_back.pop() if handed_back else store.get(payment_id)) or {
            "paymentId": payment_id, "orderId": order_id, "status": "PENDING", "version": 0}
        payment = {**read, **{k: v for k, v in fact.items() if k not in read or k in ("cancelled", "stockReserved")}}
        while True:
            uow = UnitOfWork()
            after = _step(event, uow, payment)
            if after == read:
                return
            store.save(uow, after, read["version"])
            uow.commit()
            if next_step(after) is None:
                return
            read = payment = {**after, "version": read["version"] + 1}

    retry_on_conflict(attempt, what=f"payment {payment_id}")


def _step(event: InboundEvent, uow: UnitOfWork, payment: dict[str, Any]) -> dict[str, Any]:
    """The payment after its next step, with the step's events added to ``uow``."""
    step = next_step(payment)
    if step == "cancel":
        return {**payment, "status": "CANCELLED"}
    if step == "claim":
        return {**payment, "status": "CHARGING"}
    if step == "charge":
        return _charge(event, uow, payment)
    if step == "refund":
        return _refund(event, uow, payment)
    return payment


def _with_retries(call):
    for attempt in range(PROVIDER_ATTEMPTS):
        try:
            return call()
        except providers.ProviderTimeout:
            if attempt == PROVIDER_ATTEMPTS - 1:
                raise  # the mapping retries the record later; the key makes the retry safe


def _common(payment: dict[str, Any]) -> dict[str, Any]:
    return {"payment_id": payment["paymentId"], "order_id": payment["orderId"], "user_id": payment["userId"],
            "amount": payment["amount"]}


def _charge(event: InboundEvent, uow: UnitOfWork, payment: dict[str, Any]) -> dict[str, Any]:
    amount = payment["amount"]
    with tracing.span("charge payment-provider", kind="client", attributes={
            "rpc.system.name": "payment-provider", "rpc.method": "charge",
            "shopstream.payment_id": payment["paymentId"]}):
        result = _with_retries(lambda: providers.provider.charge(
            idempotency_key=payment["paymentId"], amount=amount["amount"], currency=amount["currency"],
            method=payment["paymentMethod"]))
    initiated = _emit(uow, event.envelope, "PaymentInitiated",
                      PaymentInitiated(**_common(payment), payment_method=payment["paymentMethod"]))
    # The outcome is caused by the initiation: the trace reads reserved -> initiated -> processed.
    if not result.succeeded:
        _emit(uow, initiated, "PaymentFailed",
              PaymentFailed(**_common(payment), decline_code=result.decline_code or "declined"))
        return {**payment, "status": "FAILED", "declineCode": result.decline_code}
    processed = _emit(uow, initiated, "PaymentProcessed",
                      PaymentProcessed(**_common(payment), provider_reference=result.reference))
    captured = {**payment, "status": "CAPTURED", "providerReference": result.reference}
    if payment.get("cancelled"):
        return _refund(event, uow, captured, cause=processed)  # cancelled while the charge was in flight
    return captured


def _refund(event: InboundEvent, uow: UnitOfWork, payment: dict[str, Any],
            cause: EventEnvelope | None = None) -> dict[str, Any]:
    with tracing.span("refund payment-provider", kind="client", attributes={
            "rpc.system.name": "payment-provider", "rpc.method": "refund",
            "shopstream.payment_id": payment["paymentId"]}):
        result = _with_retries(lambda: providers.provider.refund(
            idempotency_key=f"refund_{payment['paymentId']}", charge_reference=payment["providerReference"],
            amount=payment["amount"]["amount"]))
    _emit(uow, cause or event.envelope, "PaymentRefunded",
          PaymentRefunded(**_common(payment), refund_reference=result.reference))
    return {**payment, "status": "REFUNDED", "refundReference": result.reference}


def _emit(uow: UnitOfWork, cause: EventEnvelope, event_type: str, data: Any) -> EventEnvelope:
    envelope = event_from_event(cause, event_type=event_type, service=SERVICE, data=data)
    uow.emit(envelope)
    return envelope
