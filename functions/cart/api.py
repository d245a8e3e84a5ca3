"""The cart service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi, created
from shopstream.request import caller

from . import logic
from .models import CartItems, CartView

service_api = ServiceApi("cart", title="cart service")
app = service_api.app
handler = service_api.handler


@app.post("/carts")
def create_cart(body: CartItems):
    return created(logic.create(caller(), body))


@app.put("/carts/<cartId>/items")
def replace_cart_items(cartId: PathId, body: CartItems) -> CartView:
    return logic.replace_items(caller(), cartId, body)


@app.get("/carts/<cartId>")
def get_cart(cartId: PathId) -> CartView:
    return logic.get(caller(), cartId)
