"""The catalog service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi, created
from shopstream.request import caller

from . import logic
from .models import CreateProduct, Product, ProductList, UpdateProduct

service_api = ServiceApi("catalog", title="catalog service")
app = service_api.app
handler = service_api.handler


@app.post("/products")
def create_product(body: CreateProduct):
    return created(logic.create(caller(), body))


@app.get("/products")
def list_products() -> ProductList:
    return ProductList(products=logic.list_products())


@app.get("/products/<productId>")
def get_product(productId: PathId) -> Product:
    return logic.get(productId)


@app.patch("/products/<productId>")
def update_product(productId: PathId, body: UpdateProduct) -> Product:
    return logic.update(caller(), productId, body)


@app.post("/products/<productId>/discontinue")
def discontinue_product(productId: PathId) -> Product:
    return logic.discontinue(caller(), productId)
