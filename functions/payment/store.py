"""The payment table: ``PAYMENT#<paymentId>/PAYMENT``, one payment per order (id derived from it).

``version`` guards every write: a payment changes only from the state it was read in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from shopstream import dynamo
from shopstream.dynamo import Key
from shopstream.events import Money
from shopstream.transaction import UnitOfWork, update_item


@dataclass(frozen=True)
class Fact:
    """What one event tells a payment: the order's intent (who, how much, how), or one of the flags."""

    user_id: str = ""
    amount: Money | None = None
    payment_method: str = ""
    cancelled: bool = False
    stock_reserved: bool = False
    stock_failed: bool = False


@dataclass(frozen=True)
class Payment:
    """A payment (PAYMENT#<paymentId> / PAYMENT), merged from the facts of its order's events in any order."""

    payment_id: str
    order_id: str
    status: str = "PENDING"  # see payment.logic for the moves
    version: int = 0  # 0: not stored yet
    user_id: str = ""  # "": not learnt yet
    amount: Money | None = None  # None: the intent (OrderCreated) is not known yet
    payment_method: str = ""
    cancelled: bool = False
    stock_reserved: bool = False
    stock_failed: bool = False
    authorisation_reference: str | None = None
    provider_reference: str | None = None  # the capture's
    void_reference: str | None = None
    refund_reference: str | None = None
    decline_code: str | None = None
    other: dict[str, Any] = field(default_factory=dict)  # attributes this code does not know, kept as they are

    def merged(self, fact: Fact) -> Payment:
        """With ``fact``: the intent as first learnt, the flags once set stay set."""
        return replace(self, user_id=self.user_id or fact.user_id,
                       amount=self.amount if self.amount is not None else fact.amount,
                       payment_method=self.payment_method or fact.payment_method,
                       cancelled=self.cancelled or fact.cancelled,
                       stock_reserved=self.stock_reserved or fact.stock_reserved,
                       stock_failed=self.stock_failed or fact.stock_failed)


Written = tuple[bool, Payment | None]  # (the write happened, the payment after / as stored)

_ATTRIBUTES = {"paymentId": "payment_id", "orderId": "order_id", "status": "status", "version": "version",
               "userId": "user_id", "amount": "amount", "paymentMethod": "payment_method",
               "cancelled": "cancelled", "stockReserved": "stock_reserved", "stockFailed": "stock_failed",
               "authorisationReference": "authorisation_reference", "providerReference": "provider_reference",
               "voidReference": "void_reference", "refundReference": "refund_reference",
               "declineCode": "decline_code"}
_ALWAYS = ("paymentId", "orderId", "status", "version")


def payment_id_for(order_id: str) -> str:
    return f"pay_{order_id}"


def provider_key(call: str, payment_id: str) -> str:
    """The idempotency key of a payment's call to the provider (auth, capture, void, refund): one effect each,
    whoever calls and however often. The provider keeps its ledger under it."""
    return f"{call}_{payment_id}"


def _key(payment_id: str) -> Key:
    return {"pk": f"PAYMENT#{payment_id}", "sk": "PAYMENT"}


def _payment_of(item: dict[str, Any] | None) -> Payment | None:
    if item is None:
        return None
    known = {_ATTRIBUTES[k]: v for k, v in item.items() if k in _ATTRIBUTES}
    if known.get("amount") is not None:
        known["amount"] = Money.model_validate(known["amount"])
    return Payment(**known, other={k: v for k, v in item.items() if k not in _ATTRIBUTES and k not in ("pk", "sk")})


def _attributes_of(payment: Payment) -> dict[str, Any]:
    """The payment's attributes as stored: each once it is known (a fact not learnt is absent, as a flag not
    set), and the ones this code does not know as they were read."""
    known = {name: getattr(payment, attribute) for name, attribute in _ATTRIBUTES.items()}
    known = {name: value for name, value in known.items() if value not in (None, False, "") or name in _ALWAYS}
    if payment.amount is not None:
        known["amount"] = payment.amount.to_wire()
    return {**payment.other, **known}


def get(payment_id: str) -> dict[str, Any] | None:
    """The payment as stored (the API's view is read from it)."""
    return dynamo.get(**_key(payment_id))


def read(payment_id: str) -> Payment | None:
    return _payment_of(get(payment_id))


def save(uow: UnitOfWork, payment: Payment, read_version: int) -> None:
    uow.put_versioned({**_attributes_of(payment), **_key(payment.payment_id)}, read_version)


# The two writes a fact usually causes, each tried before anything is read: when the condition
# fails, the payment as stored comes back with the failure and the caller decides from it.
def record_intent(payment: Payment) -> Written:
    """The order's payment intent as a new payment, its authorisation claimed (AUTHORISING, version 1) in the
    same write (usual: the order comes first), so that the provider is called once the claim is stored."""
    sets, names, values = dynamo.assignments(_attributes_of(payment))
    written, stored = update_item(_key(payment.payment_id), update=f"SET {sets}",
                                  condition="attribute_not_exists(pk)", names=names, values=values)
    return written, _payment_of(stored)


def claim_capture(payment_id: str) -> Written:
    """Stock is reserved and the payment, authorised, waited only for that: note it and claim the capture
    (CAPTURING) in one write, so that one caller only goes on to call the provider."""
    written, stored = update_item(
        _key(payment_id), update="SET #reserved = :true, #status = :capturing, #version = #version + :one",
        condition="#status = :authorised AND attribute_not_exists(#cancelled) AND attribute_not_exists(#failed)",
        names={"#reserved": "stockReserved", "#status": "status", "#version": "version", "#cancelled": "cancelled",
               "#failed": "stockFailed"},
        values={":true": True, ":capturing": "CAPTURING", ":authorised": "AUTHORISED", ":one": 1})
    return written, _payment_of(stored)
