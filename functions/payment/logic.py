"""Payments: PENDING -> CAPTURED | FAILED | CANCELLED;  CAPTURED -> REFUNDED.

The intent is recorded from OrderCreated; the charge happens once stock is reserved. A payment
that is CANCELLED before it is charged is never charged; one captured before the cancel is refunded.
"""

from __future__ import annotations

from shopstream.api import Caller
from shopstream.consumer import InboundEvent
from shopstream.envelope import event_from_event
from shopstream.events import PaymentFailed, PaymentInitiated, PaymentProcessed, PaymentRefunded
from shopstream.outbox import ConditionFailed, UnitOfWork

from . import provider as providers
from . import store
from .models import PaymentView

SERVICE = "payment"
PROVIDER_ATTEMPTS = 3


class AwaitingOrder(RuntimeError):
    """Stock was reserved for an order whose OrderCreated this service has not seen yet (transient)."""


def get(caller: Caller, payment_id: str) -> PaymentView:
    item = store.get(payment_id)
    caller.require_owner(item["userId"] if item else None, "payment not found")
    return PaymentView.model_validate(item)


def on_order_event(event: InboundEvent) -> None:
    data = event.data
    payment_id = store.payment_id_for(data.order_id)
    if event.event_type == "OrderCreated":
        uow = UnitOfWork()
        store.create(uow, {"paymentId": payment_id, "orderId": data.order_id, "userId": data.user_id,
                           "amount": data.total.to_wire(), "paymentMethod": data.payment_method, "status": "PENDING"})
        try:
            uow.commit()
        except ConditionFailed:
            pass
        return
    _cancel_or_refund(event, payment_id)


def _with_retries(call):
    for attempt in range(PROVIDER_ATTEMPTS):
        try:
            return call()
        except providers.ProviderTimeout:
            if attempt == PROVIDER_ATTEMPTS - 1:
                raise  # the mapping retries the record later, with the same idempotency key


def on_stock_reserved(event: InboundEvent) -> None:
    payment_id = store.payment_id_for(event.data.order_id)
    payment = store.get(payment_id)
    if payment is None:
        raise AwaitingOrder(f"no payment intent yet for {event.data.order_id}")
    if payment["status"] != "PENDING":
        return  # charged, failed or cancelled already
    amount = payment["amount"]
    result = _with_retries(lambda: providers.provider.charge(
        idempotency_key=payment_id, amount=amount["amount"], currency=amount["currency"],
        method=payment["paymentMethod"]))
    common = {"payment_id": payment_id, "order_id": payment["orderId"], "user_id": payment["userId"],
              "amount": amount}
    uow = UnitOfWork()
    initiated = event_from_event(event.envelope, event_type="PaymentInitiated", service=SERVICE,
                                 data=PaymentInitiated(**common, payment_method=payment["paymentMethod"]))
    uow.emit(initiated)
    # The outcome is caused by the initiation: the trace reads reserved -> initiated -> processed.
    if result.succeeded:
        store.move(uow, payment_id, "PENDING", "CAPTURED", providerReference=result.reference)
        outcome = event_from_event(initiated, event_type="PaymentProcessed", service=SERVICE,
                                   data=PaymentProcessed(**common, provider_reference=result.reference))
    else:
        store.move(uow, payment_id, "PENDING", "FAILED", declineCode=result.decline_code)
        outcome = event_from_event(initiated, event_type="PaymentFailed", service=SERVICE,
                                   data=PaymentFailed(**common, decline_code=result.decline_code or "declined"))
    uow.emit(outcome)
    try:
        uow.commit()
    except ConditionFailed:
        on_stock_reserved(event)  # cancelled meanwhile: the next pass refunds nothing twice


def _cancel_or_refund(event: InboundEvent, payment_id: str) -> None:
    payment = store.get(payment_id)
    uow = UnitOfWork()
    if payment is None:
        return
    if payment["status"] == "PENDING":
        store.move(uow, payment_id, "PENDING", "CANCELLED")
    elif payment["status"] == "CAPTURED":
        amount = payment["amount"]
        result = _with_retries(lambda: providers.provider.refund(
            idempotency_key=f"refund_{payment_id}", charge_reference=payment["providerReference"],
            amount=amount["amount"]))
        store.move(uow, payment_id, "CAPTURED", "REFUNDED", refundReference=result.reference)
        uow.emit(event_from_event(event.envelope, event_type="PaymentRefunded", service=SERVICE,
                                  data=PaymentRefunded(payment_id=payment_id, order_id=payment["orderId"],
                                                       user_id=payment["userId"], amount=amount,
                                                       refund_reference=result.reference)))
    else:
        return
    try:
        uow.commit()
    except ConditionFailed:
        _cancel_or_refund(event, payment_id)  # it was charged meanwhile: refund it
