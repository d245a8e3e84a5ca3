"""The events of payment-events (version v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import Id, Label, Money, Text


class PaymentInitiated(WireModel):
    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    payment_method: str = Field(min_length=1, max_length=64)


class PaymentAuthorised(WireModel):
    """The provider holds the amount on the customer's method; nothing is taken until it is captured
    (PaymentProcessed) or released (PaymentVoided)."""

    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    authorisation_reference: Label


class PaymentProcessed(WireModel):  # the amount was taken: the authorisation captured

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


class PaymentVoided(WireModel):
    """An authorisation released without taking anything: the stock could not be reserved, or the order was
    cancelled before its capture."""

    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    authorisation_reference: Label
    void_reference: Label
    reason: Literal["stock_unavailable", "order_cancelled"]
