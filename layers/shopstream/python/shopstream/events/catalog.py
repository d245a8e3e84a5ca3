"""The events of catalog-events (version v1)."""

from __future__ import annotations

from pydantic import Field

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import Id, Money, Version, example

catalog_event = TopicEvents("catalog-events", key="productId")


@catalog_event
class ProductCreated(WireModel):
    model_config = example({"productId": "p-1", "sku": "MUG-1", "name": "Mug",
                            "price": {"amount": 2500, "currency": "EUR"}})

    product_id: Id
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    price: Money
    version: Version = 1


@catalog_event
class ProductUpdated(WireModel):
    model_config = example({"productId": "p-1", "price": {"amount": 2500, "currency": "EUR"}, "version": 2})

    product_id: Id
    name: str | None = Field(default=None, min_length=1, max_length=200)
    price: Money | None = None
    version: Version


@catalog_event
class ProductDiscontinued(WireModel):
    model_config = example({"productId": "p-1", "version": 3})

    product_id: Id
    version: Version
