from __future__ import annotations

from shopstream.envelope import WireModel
from shopstream.events import Address, ItemQuantity


class ShipmentView(WireModel):
    shipment_id: str
    order_id: str
    user_id: str
    status: str
    address: Address | None = None  # None once the customer was erased
    items: list[ItemQuantity]
    carrier: str | None = None
    tracking_number: str | None = None
    delivered_at: str | None = None
