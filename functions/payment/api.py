"""The payment service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi
from shopstream.request import caller

from . import logic
from .models import PaymentView

service_api = ServiceApi("payment", title="payment service")
app = service_api.app
handler = service_api.handler


@app.get("/payments/<paymentId>")
def get_payment(paymentId: PathId) -> PaymentView:
    return logic.get(caller(), paymentId)
