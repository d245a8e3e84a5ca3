"""Lambda entry points of the cart service."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi, caller, created
from shopstream.consumer import EventConsumer

from . import logic
from .models import CartItems, CartView

service_api = ServiceApi("cart", title="cart service")
app = service_api.app
api = service_api.handler

product_sync = EventConsumer("cart", "product-sync", logic.on_product_event)
order_checkout = EventConsumer("cart", "order-checkout", logic.on_order_created)
user_sync = EventConsumer("cart", "user-sync", logic.on_user_event)


@app.post("/carts")
def create_cart(body: CartItems):
    return created(logic.create(caller(), body))


@app.put("/carts/<cartId>/items")
def replace_cart_items(cartId: PathId, body: CartItems) -> CartView:
    return logic.replace_items(caller(), cartId, body)


@app.get("/carts/<cartId>")
def get_cart(cartId: PathId) -> CartView:
    return logic.get(caller(), cartId)


def sweep_abandoned_carts(event, context):
    return {"abandoned": logic.sweep_abandoned()}
