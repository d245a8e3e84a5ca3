"""The inventory service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi
from shopstream.request import caller

from . import logic
from .models import Adjustment, StockView

service_api = ServiceApi("inventory", title="inventory service")
app = service_api.app
handler = service_api.handler


@app.get("/inventory/<productId>")
def get_stock(productId: PathId) -> StockView:
    return logic.view(productId)


@app.post("/inventory/<productId>/adjustments")
def adjust_stock(productId: PathId, body: Adjustment) -> StockView:
    return logic.adjust(caller(), productId, body)
