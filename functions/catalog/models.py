from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events import MAX_AMOUNT, MAX_LINES, MAX_QUANTITY, Money

# The dearest a unit may be, so that the largest order's total still fits in Money.
MAX_UNIT_PRICE = MAX_AMOUNT // (MAX_LINES * MAX_QUANTITY)


class Price(Money):
    amount: int = Field(ge=0, le=MAX_UNIT_PRICE)


class CreateProduct(WireModel):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    price: Price


class UpdateProduct(WireModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    price: Price | None = None


class Availability(WireModel):
    available: int
    in_stock: bool


class Product(WireModel):
    product_id: str
    sku: str
    name: str
    price: Money
    status: str
    version: int
    availability: Availability


# A page of GET /products: at most 100 products. The largest product's JSON is under 5 KB even at every
# bound (a 200-character name of 4-byte characters, escaped by the JSON encoder to 12 bytes each and
# to 14 inside Lambda's response: 2.8 KB; sku, ids and numbers ~2 KB more), so a page is under
# 100 x 5 KB = 0.5 MB, far from Lambda's 6 MB (tests/integration/test_list_pages.py measures it).
PRODUCTS_PAGE_DEFAULT = 50
PRODUCTS_PAGE_MAX = 100


class ProductList(WireModel):
    products: list[Product]
    next_cursor: str | None = Field(default=None, description="The cursor to the next page; absent on the last")
