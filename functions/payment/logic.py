"""Payments, authorised beside the reservation and captured after it:

    PENDING -> AUTHORISING -> AUTHORISED | FAILED (declined)
    AUTHORISED -> CAPTURING -> CAPTURED -> REFUNDED (cancelled after the capture)
    AUTHORISED -> VOIDING -> VOIDED (no stock, or cancelled before the capture)
    PENDING -> CANCELLED (no stock, or cancelled, before anything was authorised)

A payment merges four facts about its order, in whatever order they arrive: the intent (OrderCreated: amount
and method), stock held (InventoryReserved) or not (InventoryReservationFailed), and cancelled
(OrderCancelled). With the intent it is authorised at once, beside the reservation: the order is confirmed
once it has both (order.logic), so the provider's round trip and the reservation overlap. Once authorised,
stock held captures it; no stock, or a cancel, voids it.

Each state that calls the provider (AUTHORISING, CAPTURING, VOIDING) is committed before the call: one
decision is taken from each state, and a crash or a timeout leaves a state that says which call to finish.
Every call has its own idempotency key, so finishing it again never moves money twice. A cancel that lands
while a capture is in flight only marks the payment, and whoever finishes the capture refunds at once.

An authorisation in flight is finished only by the handler of the order's own events (OrderCreated, or a
later OrderCancelled: one at a time per order, in order), never by the reservation's, which may run at the
same moment: a reservation that lands meanwhile is only noted, and the authoriser goes on from it, so the
provider is never asked to authorise one payment twice at once (the commit lost to that note is retried with
the answer already had, not a second call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from shopstream import tracing
from shopstream.envelope import EventEnvelope, event_from_event
from shopstream.events import (
    InventoryReservationFailed,
    InventoryReserved,
    Money,
    OrderCancelled,
    OrderCreated,
    PaymentAuthorised,
    PaymentFailed,
    PaymentInitiated,
    PaymentProcessed,
    PaymentRefunded,
    PaymentVoided,
)
from shopstream.inbound import InboundEvent, PoisonRecord
from shopstream.request import Caller
from shopstream.transaction import UnitOfWork, retry_on_conflict

from . import provider as providers
from . import store
from .models import PaymentView
from .store import Fact, Payment

SERVICE = "payment"
PROVIDER_ATTEMPTS = 3


class ProviderRefused(RuntimeError):
    """The provider refused a capture or a void that the payment's state says it must accept (e.g. an
    authorisation that expired): not retried into success, so the record ends in its mapping's failed-batch
    bucket for a person to look at."""


def get(caller: Caller, payment_id: str) -> PaymentView:
    item = store.get(payment_id)
    # A payment known only from a cancellation or a reservation has nothing to show yet.
    caller.require_owner(item.get("userId") if item and "amount" in item else None, "payment not found")
    return PaymentView.model_validate(item)


def on_order_event(event: InboundEvent) -> None:
    match event.data:
        case OrderCreated() as data:
            intent = Fact(user_id=data.user_id, amount=data.total, payment_method=data.payment_method)
            _advance(event, data.order_id, intent, authoriser=True, first_write=lambda payment_id: store.record_intent(
                Payment(payment_id, data.order_id, status="AUTHORISING", version=1).merged(intent)))
        case OrderCancelled() as data:  # e.g. the saga's timeout, after the OrderCreated was given up mid-way
            _advance(event, data.order_id, Fact(user_id=data.user_id, cancelled=True), authoriser=True)
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def on_inventory_event(event: InboundEvent) -> None:
    match event.data:
        case InventoryReserved(order_id=order_id):
            _advance(event, order_id, Fact(stock_reserved=True), first_write=store.claim_capture)
        case InventoryReservationFailed(order_id=order_id):
            _advance(event, order_id, Fact(stock_failed=True))
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)


def next_step(payment: Payment) -> str | None:
    """What the payment's facts call for next (pure)."""
    give_up = payment.cancelled or payment.stock_failed
    match payment.status:
        case "PENDING" if give_up:
            return "cancel"
        case "PENDING" if payment.amount is not None:
            return "claim authorisation"
        case "AUTHORISING":
            return "authorise"
        case "AUTHORISED" if give_up:
            return "claim void"
        case "AUTHORISED" if payment.stock_reserved:
            return "claim capture"
        case "VOIDING":
            return "void"
        case "CAPTURING":
            return "capture"
        case "CAPTURED" if payment.cancelled:
            return "refund"
    return None


Answers = dict[str, providers.ProviderResult]  # the provider's answers within one invocation, by call


def _advance(event: InboundEvent, order_id: str, fact: Fact, *, authoriser: bool = False,
             first_write: Callable[[str], store.Written] | None = None) -> None:
    """Merge the fact, then take steps until none is left; each step commits on the version it read.

    ``first_write``: the step this fact usually causes, tried as one conditional write before
    anything is read. If it happens, the steps go on from the payment it returns; if not, from the
    payment its failed condition handed back. Either way there is no read first.
    ``authoriser``: the event may finish an authorisation in flight (one of the order's own events, which
    come one at a time per order); any other finding one only notes its fact, for the authoriser to go on from."""
    steps = _Steps(event, store.payment_id_for(order_id), order_id, fact, authoriser)
    if first_write is not None:
        written, stored = first_write(steps.payment_id)
        steps.start_from(stored)
        if written:
            steps.fact = Fact()
    retry_on_conflict(steps.attempt, what=f"payment {steps.payment_id}")


@dataclass
class _Steps:
    """A payment's steps after a fact, attempted again from a fresh read when a commit loses a race."""

    event: InboundEvent
    payment_id: str
    order_id: str
    fact: Fact
    authoriser: bool
    answers: Answers = field(default_factory=dict)  # a step retried after a lost race reuses its answer
    _handed_back: list[Payment | None] = field(default_factory=list)  # the first attempt's start, if given

    def start_from(self, payment: Payment | None) -> None:
        """The first attempt starts from ``payment`` (None: there is none yet), without a read."""
        self._handed_back = [payment]

    def attempt(self) -> None:
        read = self._read()
        uow, after = self._take_step(read.merged(self.fact))
        while after != read:  # the step changed the payment: commit it on the version read, then the next
            store.save(uow, after, read.version)
            uow.commit()
            read = replace(after, version=read.version + 1)
            uow, after = self._take_step(read)

    def _read(self) -> Payment:
        stored = self._handed_back.pop() if self._handed_back else store.read(self.payment_id)
        return stored or Payment(self.payment_id, self.order_id)

    def _take_step(self, payment: Payment) -> tuple[UnitOfWork, Payment]:
        """The payment after its next step, and the step's writes (nothing left to do: the payment as it is)."""
        step = next_step(payment)
        if step == "authorise" and not self.authoriser:
            step = None  # only the order's own events finish an authorisation in flight
        uow = UnitOfWork()
        return uow, _step(step, self.event, uow, payment, self.answers)


def _step(step: str | None, event: InboundEvent, uow: UnitOfWork, payment: Payment, answers: Answers) -> Payment:
    """The payment after ``step``, with the step's events added to ``uow``."""
    match step:
        case "cancel":
            return replace(payment, status="CANCELLED")
        case "claim authorisation":
            return replace(payment, status="AUTHORISING")
        case "authorise":
            return _authorise(event, uow, payment, answers)
        case "claim capture":
            return replace(payment, status="CAPTURING")
        case "capture":
            return _capture(event, uow, payment, answers)
        case "claim void":
            return replace(payment, status="VOIDING")
        case "void":
            return _void(event, uow, payment, answers)
        case "refund":
            return _refund(event, uow, payment, answers)
    return payment


def _call(answers: Answers, method: str, payment: Payment,
          call: Callable[[], providers.ProviderResult]) -> providers.ProviderResult:
    """The provider's answer to ``call``, asked at most once per invocation and retried on a timeout."""
    if method in answers:
        return answers[method]
    with tracing.span(f"{method} payment-provider", kind="client", attributes={
            "rpc.system.name": "payment-provider", "rpc.method": method,
            "shopstream.payment_id": payment.payment_id}):
        for attempt in range(PROVIDER_ATTEMPTS):
            try:
                answers[method] = call()
                return answers[method]
            except providers.ProviderTimeout:
                if attempt == PROVIDER_ATTEMPTS - 1:
                    raise  # the mapping retries the record later; the key makes the retry safe
    raise AssertionError("unreachable")


def _amount(payment: Payment) -> Money:
    assert payment.amount is not None, "a payment is authorised only once its intent is known"
    return payment.amount


def _common(payment: Payment) -> dict[str, Any]:
    return {"payment_id": payment.payment_id, "order_id": payment.order_id, "user_id": payment.user_id,
            "amount": _amount(payment)}


def _authorise(event: InboundEvent, uow: UnitOfWork, payment: Payment, answers: Answers) -> Payment:
    amount = _amount(payment)
    result = _call(answers, "authorise", payment, lambda: providers.provider.authorise(
        idempotency_key=store.provider_key("auth", payment.payment_id), amount=amount.amount,
        currency=amount.currency, method=payment.payment_method))
    initiated = _emit(uow, event.envelope, "PaymentInitiated",
                      PaymentInitiated(**_common(payment), payment_method=payment.payment_method))
    # The outcome is caused by the initiation: the trace reads created -> initiated -> authorised.
    if not result.succeeded:
        _emit(uow, initiated, "PaymentFailed",
              PaymentFailed(**_common(payment), decline_code=result.decline_code or "declined"))
        return replace(payment, status="FAILED", decline_code=result.decline_code)
    _emit(uow, initiated, "PaymentAuthorised",
          PaymentAuthorised(**_common(payment), authorisation_reference=result.reference))
    return replace(payment, status="AUTHORISED", authorisation_reference=result.reference)


def _authorisation(payment: Payment) -> str:
    assert payment.authorisation_reference, "captured or voided only once authorised"
    return payment.authorisation_reference


def _capture(event: InboundEvent, uow: UnitOfWork, payment: Payment, answers: Answers) -> Payment:
    result = _call(answers, "capture", payment, lambda: providers.provider.capture(
        idempotency_key=store.provider_key("capture", payment.payment_id),
        authorisation_reference=_authorisation(payment), amount=_amount(payment).amount))
    if not result.succeeded:
        raise ProviderRefused(f"capture of {payment.payment_id} refused: {result.decline_code}")
    processed = _emit(uow, event.envelope, "PaymentProcessed",
                      PaymentProcessed(**_common(payment), provider_reference=result.reference))
    captured = replace(payment, status="CAPTURED", provider_reference=result.reference)
    if payment.cancelled:
        return _refund(event, uow, captured, answers, cause=processed)  # cancelled while the capture was in flight
    return captured


def _void(event: InboundEvent, uow: UnitOfWork, payment: Payment, answers: Answers) -> Payment:
    result = _call(answers, "void", payment, lambda: providers.provider.void(
        idempotency_key=store.provider_key("void", payment.payment_id),
        authorisation_reference=_authorisation(payment)))
    if not result.succeeded:
        raise ProviderRefused(f"void of {payment.payment_id} refused: {result.decline_code}")
    _emit(uow, event.envelope, "PaymentVoided", PaymentVoided(
        **_common(payment), authorisation_reference=_authorisation(payment), void_reference=result.reference,
        reason="stock_unavailable" if payment.stock_failed else "order_cancelled"))
    return replace(payment, status="VOIDED", void_reference=result.reference)


def _refund(event: InboundEvent, uow: UnitOfWork, payment: Payment, answers: Answers,
            cause: EventEnvelope | None = None) -> Payment:
    assert payment.provider_reference, "refunded only once captured"
    charge = payment.provider_reference
    result = _call(answers, "refund", payment, lambda: providers.provider.refund(
        idempotency_key=store.provider_key("refund", payment.payment_id), charge_reference=charge,
        amount=_amount(payment).amount))
    _emit(uow, cause or event.envelope, "PaymentRefunded",
          PaymentRefunded(**_common(payment), refund_reference=result.reference))
    return replace(payment, status="REFUNDED", refund_reference=result.reference)


def _emit(uow: UnitOfWork, cause: EventEnvelope, event_type: str, data: Any) -> EventEnvelope:
    envelope = event_from_event(cause, event_type=event_type, service=SERVICE, data=data)
    uow.emit(envelope)
    return envelope
