"""The payment table: ``PAYMENT#<paymentId>/PAYMENT``, one payment per order (id derived from it).

``version`` guards every write: a payment changes only from the state it was read in.
"""

from __future__ import annotations

from typing import Any

from shopstream import dynamo
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork, update_item

Written = tuple[bool, dict[str, Any] | None]  # (the write happened, the payment after / as stored)


def payment_id_for(order_id: str) -> str:
    return f"pay_{order_id}"


def provider_key(call: str, payment_id: str) -> str:
    """The idempotency key of a payment's call to the provider (auth, capture, void, refund): one effect each,
    whoever calls and however often. The provider keeps its ledger under it."""
    return f"{call}_{payment_id}"


def _key(payment_id: str) -> Key:
    return {"pk": f"PAYMENT#{payment_id}", "sk": "PAYMENT"}


def get(payment_id: str) -> dict[str, Any] | None:
    return dynamo.get(**_key(payment_id))


def save(uow: UnitOfWork, payment: dict[str, Any], read_version: int) -> None:
    uow.put_versioned({**payment, **_key(payment["paymentId"])}, read_version)


# The two writes a fact usually causes, each tried before anything is read: when the condition
# fails, the payment as stored comes back with the failure and the caller decides from it.
def record_intent(payment_id: str, order_id: str, intent: dict[str, Any]) -> Written:
    """The order's payment intent as a new payment, its authorisation claimed (AUTHORISING) in the same write
    (usual: the order comes first), so that the provider is called once the claim is stored."""
    fields = {"paymentId": payment_id, "orderId": order_id, "status": "AUTHORISING", "version": 1, **intent}
    sets, names, values = dynamo.assignments(fields)
    return update_item(_key(payment_id), update=f"SET {sets}", condition="attribute_not_exists(pk)",
                       names=names, values=values)


def claim_capture(payment_id: str) -> Written:
    """Stock is reserved and the payment, authorised, waited only for that: note it and claim the capture
    (CAPTURING) in one write, so that one caller only goes on to call the provider."""
    return update_item(
        _key(payment_id), update="SET #reserved = :true, #status = :capturing, #version = #version + :one",
        condition="#status = :authorised AND attribute_not_exists(#cancelled) AND attribute_not_exists(#failed)",
        names={"#reserved": "stockReserved", "#status": "status", "#version": "version", "#cancelled": "cancelled",
               "#failed": "stockFailed"},
        values={":true": True, ":capturing": "CAPTURING", ":authorised": "AUTHORISED", ":one": 1})
