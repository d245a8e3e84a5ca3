"""The catalog service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from shopstream import pages
from shopstream.api import PathId, ServiceApi, created
from shopstream.request import caller

from . import logic
from .models import PRODUCTS_PAGE_DEFAULT, PRODUCTS_PAGE_MAX, CreateProduct, Product, ProductList, UpdateProduct

service_api = ServiceApi("catalog", title="catalog service")
app = service_api.app
handler = service_api.handler

PageLimit = Annotated[int, Query(ge=1, le=PRODUCTS_PAGE_MAX, description=pages.LIMIT_DESCRIPTION)]
PageCursor = Annotated[str | None, Query(max_length=pages.MAX_CURSOR_LENGTH, pattern=pages.CURSOR_PATTERN,
                                         description=pages.CURSOR_DESCRIPTION)]


@app.post("/products")
def create_product(body: CreateProduct):
    return created(logic.create(caller(), body))


@app.get("/products")
def list_products(
    limit: PageLimit = PRODUCTS_PAGE_DEFAULT,
    cursor: PageCursor = None,
) -> ProductList:
    """Products by name, a page at a time (follow nextCursor)."""
    return logic.list_products(limit, cursor)


@app.get("/products/<productId>")
def get_product(productId: PathId) -> Product:
    return logic.get(productId)


@app.patch("/products/<productId>")
def update_product(productId: PathId, body: UpdateProduct) -> Product:
    return logic.update(caller(), productId, body)


@app.post("/products/<productId>/discontinue")
def discontinue_product(productId: PathId) -> Product:
    return logic.discontinue(caller(), productId)
