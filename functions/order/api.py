"""The order service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from shopstream import pages
from shopstream.api import PathId, ServiceApi, created
from shopstream.request import caller

from . import logic
from .models import ORDERS_PAGE_DEFAULT, ORDERS_PAGE_MAX, OrderHistory, OrderView, PlaceOrder

service_api = ServiceApi("order", title="order service")
app = service_api.app
handler = service_api.handler

PageLimit = Annotated[int, Query(ge=1, le=ORDERS_PAGE_MAX, description=pages.LIMIT_DESCRIPTION)]
PageCursor = Annotated[str | None, Query(max_length=pages.MAX_CURSOR_LENGTH, pattern=pages.CURSOR_PATTERN,
                                         description=pages.CURSOR_DESCRIPTION)]


@app.post("/orders")
def place_order(body: PlaceOrder):
    return created(logic.place(caller(), body), status=202)


@app.get("/orders/<orderId>")
def get_order(orderId: PathId) -> OrderView:
    return logic.get(caller(), orderId)


@app.get("/users/<userId>/orders")
def list_orders(
    userId: PathId,
    limit: PageLimit = ORDERS_PAGE_DEFAULT,
    cursor: PageCursor = None,
) -> OrderHistory:
    """The customer's orders, newest first, a page at a time (follow nextCursor)."""
    return logic.history(caller(), userId, limit, cursor)


@app.post("/orders/<orderId>/cancel")
def cancel_order(orderId: PathId):
    return created(logic.cancel_by_customer(caller(), orderId), status=202)
