from __future__ import annotations

from pydantic import Field

from shopstream.envelope import WireModel


class Adjustment(WireModel):
    delta: int = Field(ge=-1_000_000, le=1_000_000)
    reason: str = Field(min_length=1, max_length=200)


class StockView(WireModel):
    product_id: str
    available: int
    reserved: int
