from __future__ import annotations

from shopstream.envelope import WireModel
from shopstream.events import Money


class PaymentView(WireModel):
    payment_id: str
    order_id: str
    user_id: str
    amount: Money
    payment_method: str
    status: str
    authorisation_reference: str | None = None
    provider_reference: str | None = None  # the capture's
    decline_code: str | None = None
    refund_reference: str | None = None
    void_reference: str | None = None
