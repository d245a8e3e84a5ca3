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


class ProductList(WireModel):
    products: list[Product]
