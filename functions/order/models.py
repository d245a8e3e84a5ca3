from __future__ import annotations

from collections import Counter

from pydantic import Field, model_validator

from shopstream.envelope import WireModel
from shopstream.events import MAX_LINES, MAX_QUANTITY, Address, ItemQuantity, Money, OrderLine


class PlaceOrder(WireModel):
    items: list[ItemQuantity] = Field(min_length=1, max_length=MAX_LINES)
    payment_method: str = Field(min_length=1, max_length=64)
    shipping_address: Address
    cart_id: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")

    @model_validator(mode="after")
    def _lines_merge_within_bounds(self) -> PlaceOrder:
        """Lines of one product are merged into one order line, which has the same bound as any line."""
        merged: Counter[str] = Counter()
        for item in self.items:
            merged[item.product_id] += item.quantity
        over = [p for p, q in merged.items() if q > MAX_QUANTITY]
        if over:
            raise ValueError(f"at most {MAX_QUANTITY} units of a product per order: {', '.join(over)[:200]}")
        return self


class OrderAccepted(WireModel):
    order_id: str
    status: str
    correlation_id: str


class OrderView(WireModel):
    order_id: str
    user_id: str
    status: str
    items: list[OrderLine]
    total: Money
    payment_method: str
    shipping_address: Address | None = None  # None once the customer was erased
    cart_id: str | None = None
    cancellation_reason: str | None = None
    payment_id: str | None = None
    shipment_id: str | None = None
    refunded: bool = False
    created_at: str
    updated_at: str
    version: int
    correlation_id: str | None = None  # the trail of the order's events (GET /audit/{correlationId})


# A page of GET /users/{userId}/orders: at most 25 orders. The largest order is under 120 KB of Lambda
# response even at every bound (50 lines, every string at its maximum length of 4-byte characters,
# which JSON escapes to 12 bytes and Lambda's response to 14), so a page is under 25 x 120 KB = 3 MB,
# half of Lambda's 6 MB (tests/integration/test_list_pages.py measures it). A real order is ~2 KB.
ORDERS_PAGE_DEFAULT = 10
ORDERS_PAGE_MAX = 25


class OrderHistory(WireModel):
    user_id: str
    customer_name: str | None = None  # None once the customer was erased
    orders: list[OrderView]  # newest first
    next_cursor: str | None = Field(default=None, description="The cursor to the next page; absent on the last")
