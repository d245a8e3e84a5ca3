"""The events of payment-events (version v1)."""

from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import Id, Label, Money, Text


class PaymentInitiated(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    payment_method: str = Field(min_length=1, max_length=64)


class PaymentProcessed(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    provider_reference: Label


class PaymentFailed(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    decline_code: Label
    message: Text | None = None


class PaymentRefunded(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    refund_reference: Label
