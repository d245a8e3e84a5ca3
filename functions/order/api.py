"""The order service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponseHeader

from shopstream import long_poll, pages, tracing
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


AwaitedStatus = Literal["CONFIRMED", "CANCELLED", "SHIPPED", "DELIVERED"]
WaitFor = Annotated[list[AwaitedStatus] | None, Query(
    description="Wait until the order is in one of these statuses (comma-separated, or the parameter repeated), "
                "or can no longer come to any of them (e.g. CANCELLED while CONFIRMED is awaited), or "
                f"{long_poll.TIMEOUT_PARAMETER} have passed; {long_poll.OUTCOME_HEADER} says which. Absent: the "
                "order now")]
WaitSeconds = Annotated[int, Query(
    ge=0, le=long_poll.MAX_TIMEOUT_SECONDS,
    description=f"With {long_poll.WAIT_FOR_PARAMETER}: how long to wait at most, in seconds (0: the outcome now). "
                "The answer comes as soon as the wait is over, within API Gateway's 30-second limit")]
OUTCOME_HEADER_DOCUMENTED: dict[str, OpenAPIResponseHeader] = {long_poll.OUTCOME_HEADER: {
    "description": f"Only with {long_poll.WAIT_FOR_PARAMETER}: reached (the order is in an awaited status), "
                   "unreachable (it can never come to one: it is past them or cancelled) or timeout (not yet: "
                   "ask again). The body is the order as it is then, whichever",
    "schema": {"type": "string", "enum": list(long_poll.OUTCOMES)}}}
TRACE_ID_HEADER_DOCUMENTED: dict[str, OpenAPIResponseHeader] = {tracing.TRACE_ID_HEADER: {
    "description": "The order's trace: the W3C trace id of the request that placed it (its traceresponse), under "
                   "which the saga's spans are recorded (X-Ray; locally the console's story and `make ops ARGS=\"trace "
                   "<orderId>\"`). Absent for an order placed while tracing was off",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}}
WAIT_DESCRIPTION = (
    f"The order. With {long_poll.WAIT_FOR_PARAMETER}, a long-poll instead of polling: the answer comes as soon as "
    "the order is in an awaited status or can no longer come to one, or when timeoutSeconds have passed; "
    f"always a 200 with the order as it is then, and {long_poll.OUTCOME_HEADER} saying which (on timeout, ask "
    "again). Someone else's order is a 404 at once, as without waiting")


@app.get("/orders/<orderId>", description=WAIT_DESCRIPTION,
         responses={200: {"description": "The order", "headers": {**OUTCOME_HEADER_DOCUMENTED,
                                                                  **TRACE_ID_HEADER_DOCUMENTED}}})
def get_order(
    orderId: PathId,
    waitFor: WaitFor = None,
    timeoutSeconds: WaitSeconds = long_poll.DEFAULT_TIMEOUT_SECONDS,
) -> Response[OrderView]:
    if not waitFor:
        return Response(200, content_types.APPLICATION_JSON, logic.get(caller(), orderId))
    seconds = long_poll.budget(timeoutSeconds, app.lambda_context.get_remaining_time_in_millis())
    order, outcome = logic.await_status(caller(), orderId, frozenset(waitFor), seconds)
    return Response(200, content_types.APPLICATION_JSON, order, headers={long_poll.OUTCOME_HEADER: outcome})


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
