"""A scripted customer and administrator: drives the in-process system (local/bus.py) through its API as a client
would, for the integration tests and the benches."""

from __future__ import annotations

from typing import Any

from local.bus import InProcessBus
from local.simulation_checks import scan_table

ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}
ADMIN = "admin-1"


class UnexpectedAnswer(AssertionError):
    """The API answered a scripted call with another status than the script expects."""


def scan(service: str) -> list[dict[str, Any]]:
    return scan_table(service)


def _expect(status: int, wanted: int, body: Any) -> None:
    if status != wanted:
        raise UnexpectedAnswer(f"{status} (not {wanted}): {body}")


class Shop:
    """Drives the system through its API like a client would, and reads the outcome."""

    def __init__(self, bus: InProcessBus):
        self.bus = bus

    def register(self, user: str, name: str = "Ada") -> None:
        status, body = self.bus.call("user", "POST", "/users", user=user, body={"email": f"{user}@x.ie", "name": name})
        _expect(status, 201, body)

    def product(self, sku: str, price: int, stock: int) -> str:
        status, body = self.bus.call("catalog", "POST", "/products", user=ADMIN, admin=True,
                                     body={"sku": sku, "name": sku, "price": {"amount": price, "currency": "EUR"}})
        _expect(status, 201, body)
        self.bus.pump()
        if stock:
            status, adjusted = self.bus.call("inventory", "POST", f"/inventory/{body['productId']}/adjustments",
                                             user=ADMIN, admin=True, body={"delta": stock, "reason": "initial"})
            _expect(status, 200, adjusted)
        return str(body["productId"])

    def order(self, user: str, lines: dict[str, int], method: str = "pm_card_visa",
              correlation_id: str | None = None, **extra: Any) -> str:
        status, body = self.bus.call("order", "POST", "/orders", user=user, correlation_id=correlation_id, body={
            "items": [{"productId": p, "quantity": q} for p, q in lines.items()],
            "paymentMethod": method, "shippingAddress": ADDRESS, **extra})
        _expect(status, 202, body)
        return str(body["orderId"])

    def get_order(self, order_id: str, user: str = ADMIN) -> dict[str, Any]:
        status, body = self.bus.call("order", "GET", f"/orders/{order_id}", user=user, admin=user == ADMIN)
        _expect(status, 200, body)
        return dict(body)

    def ship(self, order_id: str) -> None:
        shipment = f"shp_{order_id}"
        for action in ("dispatch", "deliver"):
            status, body = self.bus.call("shipping", "POST", f"/shipments/{shipment}/{action}", user=ADMIN, admin=True)
            _expect(status, 200, body)
            self.bus.pump()
