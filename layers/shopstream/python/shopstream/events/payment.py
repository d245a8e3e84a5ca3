"""The events of payment-events (version v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import Id, Label, Money, Text, example

payment_event = TopicEvents("payment-events", key="orderId")


@payment_event
class PaymentInitiated(WireModel):
    model_config = example({"paymentId": "pay-1", "orderId": "o-1", "userId": "u-1",
                            "amount": {"amount": 2500, "currency": "EUR"}, "paymentMethod": "pm_card_visa"})

    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    payment_method: str = Field(min_length=1, max_length=64)


@payment_event
class PaymentAuthorised(WireModel):
    """The provider holds the amount on the customer's method; nothing is taken until it is captured
    (PaymentProcessed) or released (PaymentVoided)."""

    model_config = example({"paymentId": "pay-1", "orderId": "o-1", "userId": "u-1",
                            "amount": {"amount": 2500, "currency": "EUR"}, "authorisationReference": "pi_1"})

    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    authorisation_reference: Label


@payment_event
class PaymentProcessed(WireModel):  # the amount was taken: the authorisation captured
    model_config = example({"paymentId": "pay-1", "orderId": "o-1", "userId": "u-1",
                            "amount": {"amount": 2500, "currency": "EUR"}, "providerReference": "ch_1"})

    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    provider_reference: Label


@payment_event
class PaymentFailed(WireModel):
    model_config = example({"paymentId": "pay-1", "orderId": "o-1", "userId": "u-1",
                            "amount": {"amount": 2500, "currency": "EUR"}, "declineCode": "card_declined"})

    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    decline_code: Label
    message: Text | None = None


@payment_event
class PaymentRefunded(WireModel):
    model_config = example({"paymentId": "pay-1", "orderId": "o-1", "userId": "u-1",
                            "amount": {"amount": 2500, "currency": "EUR"}, "refundReference": "re_1"})

    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    refund_reference: Label


@payment_event
class PaymentVoided(WireModel):
    """An authorisation released without taking anything: the stock could not be reserved, or the order was
    cancelled before its capture."""

    model_config = example({"paymentId": "pay-1", "orderId": "o-1", "userId": "u-1",
                            "amount": {"amount": 2500, "currency": "EUR"}, "authorisationReference": "pi_1",
                            "voidReference": "vo_1", "reason": "stock_unavailable"})

    payment_id: Id
    order_id: Id
    user_id: Id
    amount: Money
    authorisation_reference: Label
    void_reference: Label
    reason: Literal["stock_unavailable", "order_cancelled"]
