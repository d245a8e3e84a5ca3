"""The events of catalog-events (version v1)."""

from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel
from shopstream.events.common import Id, Money, Version


class ProductCreated(WireModel):
    product_id: Id
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    price: Money
    version: Version = 1


class ProductUpdated(WireModel):
    product_id: Id
    name: str | None = Field(default=None, min_length=1, max_length=200)
    price: Money | None = None
    version: Version


class ProductDiscontinued(WireModel):
    product_id: Id
    version: Version
