"""What the events of several topics share: identifiers, money, addresses, stock levels, bounds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from shopstream.currencies import ISO_4217_CODES
from shopstream.envelope import WireModel


def example(data: dict[str, Any]) -> ConfigDict:
    """An event model's example ``data`` (camelCase, as on the wire), in its JSON Schema's ``examples``: the
    AsyncAPI document shows it, and the tests send it as the event's sample (it must be valid: a test holds it)."""
    return ConfigDict(json_schema_extra={"examples": [data]})


def sealed_example(kind: str) -> dict[str, Any]:
    """A well-formed sealed value (shopstream.personal.Sealed) that no key opens, for examples."""
    return {"kid": "u-1", "kind": kind, "alg": "X25519-HKDF-SHA256-A256GCM", "epk": "A" * 43, "iv": "B" * 16,
            "ct": "C" * 40}


Id = Annotated[str, Field(min_length=1, max_length=128)]
# Free text that travels in events: bounded so that every event, and every item built from it,
# stays far below DynamoDB's 400 KB item and Kafka's 1 MB record limits.
Text = Annotated[str, Field(max_length=500)]
Label = Annotated[str, Field(min_length=1, max_length=100)]
CurrencyCode = Literal[ISO_4217_CODES]  # type: ignore[valid-type]
CancellationReason = Literal["out_of_stock", "payment_declined", "customer_request", "timeout"]
# The largest amount anything in the shop may carry (minor units): a total of 50 lines of 1,000
# units at the largest unit price fits, and so does any sum DynamoDB adds up (38 digits).
MAX_AMOUNT = 10**15
MAX_LINES = 50
MAX_QUANTITY = 1000


class Money(WireModel):
    """An amount in integer minor units (cents) and an ISO-4217 currency."""

    amount: int = Field(ge=0, le=MAX_AMOUNT)
    currency: CurrencyCode


class Address(WireModel):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$")


class ItemQuantity(WireModel):
    product_id: Id
    quantity: int = Field(gt=0, le=MAX_QUANTITY)


class OrderLine(ItemQuantity):
    unit_price: Money


StockCount = Annotated[int, Field(ge=0, le=10**12)]
Version = Annotated[int, Field(ge=1, le=10**12)]


class StockLevel(WireModel):
    """One stock counter of a product after a change. A product's stock is split over counters (shards)
    so that reservations of a popular product do not all write one item; its level is the sum of its
    counters' newest levels. ``version`` orders the changes of one counter."""

    product_id: Id
    shard: int = Field(default=0, ge=0, le=1023, description="the counter of the product this level is of")
    quantity: StockCount
    available: StockCount
    reserved: StockCount
    version: Version


class Shortage(WireModel):
    product_id: Id
    requested: int = Field(gt=0, le=MAX_LINES * MAX_QUANTITY)
    available: StockCount
