"""The cart's product index: a discontinued product leaves every open cart holding it, found in one
query, whatever else happens to the carts meanwhile (moto; logic and store called directly)."""

from __future__ import annotations

import random

import boto3
import pytest

from shopstream import transaction
from shopstream.dynamo import from_attributes
from shopstream.transaction import MAX_TRANSACTION_ITEMS
from tests.support import present
from tests.unit.test_interleavings import envelope, inbound

AT = "2026-11-29T10:00:00.000+00:00"


def _line(product_id: str, quantity: int = 1) -> dict:
    return {"productId": product_id, "quantity": quantity}


def _create(cart_id: str, user_id: str, products: list[str]) -> None:
    from cart import store

    uow = transaction.UnitOfWork()
    store.create(uow, {"cartId": cart_id, "userId": user_id, "items": [_line(p) for p in products], "status": "OPEN",
                       "version": 1, "updatedAt": AT})
    uow.commit()


def _replace(cart_id: str, products: list[str]) -> None:
    from cart import store

    uow = transaction.UnitOfWork()
    store.replace_items(uow, present(store.get(cart_id)), [_line(p) for p in products], AT)
    uow.commit()


def _close(cart_id: str) -> None:
    from cart import store

    uow = transaction.UnitOfWork()
    store.close(uow, present(store.get(cart_id)), "CHECKED_OUT", AT)
    uow.commit()


def _table_items() -> list[dict]:
    from shopstream.config import get_settings

    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=get_settings().table_name)
    return [from_attributes(item) for page in pages for item in page["Items"]]


def _index() -> set[tuple[str, str]]:
    """(product, cart) of every index entry in the table."""
    return {(i["pk"].removeprefix("PRODUCT#"), i["cartId"]) for i in _table_items() if i["pk"].startswith("PRODUCT#")}


def _expected_index() -> set[tuple[str, str]]:
    """(product, cart) of every line of every open cart: what the index must hold, no more."""
    return {(line["productId"], i["cartId"]) for i in _table_items()
            if i["sk"] == "CART" and i["status"] == "OPEN" for line in i["items"]}


def _discontinued(product_id: str):
    return inbound(envelope("ProductDiscontinued", {"productId": product_id, "version": 2}))


def _cart_updates() -> list[dict]:
    return [i for i in _table_items() if i["pk"].startswith("OUTBOX#") and i["eventType"] == "CartUpdated"]


def test_the_index_holds_exactly_the_products_of_open_carts_through_any_sequence_of_changes(as_service):
    from cart import logic

    rng = random.Random(11)
    products = [f"p-{n}" for n in range(6)]
    with as_service("cart"):
        open_carts: list[str] = []
        for step in range(60):
            action = rng.choice(["create", "replace", "replace", "close", "erase", "discontinue"])
            if action == "create" or not open_carts:
                cart_id = f"c-{step}"
                try:
                    _create(cart_id, f"u-{rng.randrange(6)}", rng.sample(products, rng.randrange(0, 4)))
                    open_carts.append(cart_id)
                except transaction.ConditionFailed:  # the customer was erased: no cart for them
                    pass
            elif action == "replace":
                _replace(rng.choice(open_carts), rng.sample(products, rng.randrange(0, 4)))
            elif action == "close":
                _close(open_carts.pop(rng.randrange(len(open_carts))))
            elif action == "erase":
                logic.erase(f"u-{rng.randrange(6)}", AT)
                open_carts = [c for c in open_carts if _exists(c)]
            else:
                logic.on_product_event(_discontinued(rng.choice(products)))
            assert _index() == _expected_index(), f"step {step}: {action}"


def _exists(cart_id: str) -> bool:
    from cart import store

    return store.get(cart_id) is not None


def test_a_discontinued_product_leaves_every_open_cart_and_only_those(as_service):
    from cart import logic, store

    with as_service("cart"):
        _create("c-1", "u-1", ["p-gone", "p-kept"])
        _create("c-2", "u-2", ["p-gone"])
        _create("c-3", "u-3", ["p-kept"])
        _create("c-4", "u-4", ["p-gone"])
        _close("c-4")  # checked out: its lines are the order's now
        before = len(_cart_updates())
        for _ in range(2):  # a redelivery finds no cart holding it any more
            logic.on_product_event(_discontinued("p-gone"))
        assert [line["productId"] for line in present(store.get("c-1"))["items"]] == ["p-kept"]
        assert present(store.get("c-2"))["items"] == [] and present(store.get("c-2"))["version"] == 2
        assert present(store.get("c-3"))["version"] == 1 and present(store.get("c-4"))["items"] == [_line("p-gone")]
        updates = _cart_updates()[before:]
        assert sorted(u["key"] for u in updates) == ["c-1", "c-2"]
        assert _index() == {("p-kept", "c-1"), ("p-kept", "c-3")}


def test_many_carts_take_one_query_one_read_and_as_few_transactions_as_hold_them(as_service, monkeypatch):
    from cart import logic, store

    calls: list[str] = []
    carts = MAX_TRANSACTION_ITEMS // 3 + 5  # a cart, its event and its index entry each: two transactions
    with as_service("cart"):
        for n in range(carts):
            _create(f"c-{n:02}", f"u-{n}", ["p-gone"])
        client = boto3.client("dynamodb")
        monkeypatch.setattr(transaction.aws, "client", lambda name: _Counting(client, calls))
        monkeypatch.setattr(store.dynamo.aws, "client", lambda name: _Counting(client, calls))
        logic.on_product_event(_discontinued("p-gone"))
    assert calls == ["query", "batch_get_item", "transact_write_items", "transact_write_items"]
    with as_service("cart"):
        assert _index() == set() and all(present(store.get(f"c-{n:02}"))["items"] == [] for n in range(carts))


class _Counting:
    def __init__(self, client, calls: list[str]):
        self._client, self._calls = client, calls
        self.exceptions = client.exceptions

    def __getattr__(self, name: str):
        self._calls.append(name)
        return getattr(self._client, name)


@pytest.mark.parametrize("race", ["lines replaced", "checked out", "product removed"])
def test_a_cart_that_changes_between_the_read_and_the_write_still_loses_the_product(as_service, race):
    """The chunk's transaction fails on the cart that changed; each cart is then done again alone."""
    from cart import logic, store

    with as_service("cart"):
        _create("c-1", "u-1", ["p-gone"])
        _create("c-2", "u-2", ["p-gone", "p-kept"])

        def racing(uow):
            if uow is not None and any(e.event_type == "CartUpdated" for e in uow.events):
                transaction.set_commit_hooks()
                if race == "lines replaced":
                    _replace("c-2", ["p-gone", "p-new"])
                elif race == "checked out":
                    _close("c-2")
                else:
                    _replace("c-2", ["p-kept"])

        transaction.set_commit_hooks(before=racing)
        try:
            logic.on_product_event(_discontinued("p-gone"))
        finally:
            transaction.set_commit_hooks()
        assert present(store.get("c-1"))["items"] == []
        expected = {"lines replaced": [_line("p-new")], "checked out": [_line("p-gone"), _line("p-kept")],
                    "product removed": [_line("p-kept")]}[race]
        assert present(store.get("c-2"))["items"] == expected
        assert _index() == _expected_index()


@pytest.mark.parametrize("race", [False, True])
def test_a_deactivated_customers_open_carts_close_together_even_one_that_changes_meanwhile(as_service, race):
    from cart import logic, store

    full = [f"p-{n}" for n in range(store.MAX_PRODUCTS)]
    with as_service("cart"):
        for cart_id in ("c-1", "c-2", "c-3"):  # 3 x 42 actions: two transactions
            _create(cart_id, "u-1", full)
        _create("c-4", "u-2", ["p-1"])

        def racing(uow):
            if uow is not None and any(e.event_type == "CartUpdated" for e in uow.events):
                transaction.set_commit_hooks()
                _replace("c-1", ["p-new"])

        transaction.set_commit_hooks(before=racing if race else None)
        try:
            logic.on_user_event(inbound(envelope("UserDeactivated", {"userId": "u-1", "version": 2})))
        finally:
            transaction.set_commit_hooks()
        assert [present(store.get(c))["status"] for c in ("c-1", "c-2", "c-3", "c-4")] == ["ABANDONED"] * 3 + ["OPEN"]
        assert _index() == {("p-1", "c-4")} == _expected_index()
        closed = [u for u in _cart_updates() if '"ABANDONED"' in u["payload"]]
        assert sorted(u["key"] for u in closed) == ["c-1", "c-2", "c-3"]


def test_erasing_a_customer_whose_cart_changes_meanwhile_leaves_no_cart_and_no_index_entry(as_service):
    from cart import logic, store

    with as_service("cart"):
        _create("c-1", "u-1", ["p-1"])
        _create("c-2", "u-1", ["p-2"])

        def racing(uow):
            if uow is not None and any("Delete" in action for action in uow.actions):
                transaction.set_commit_hooks()
                _replace("c-1", ["p-3"])

        transaction.set_commit_hooks(before=racing)
        try:
            logic.erase("u-1", AT)
        finally:
            transaction.set_commit_hooks()
        assert store.get("c-1") is None and store.get("c-2") is None and _index() == set()


def test_a_cart_created_while_its_customer_is_erased_is_refused_or_erased_too(as_service, monkeypatch):
    """The erasure's mark is conditioned on the carts it read; a cart created in between fails it."""
    from cart import logic, store

    calls: list[str] = []
    with as_service("cart"):
        _create("c-1", "u-1", ["p-1"])

        def create_meanwhile(uow):
            if uow is not None and any("erasedAt" in str(action) for action in uow.actions):
                transaction.set_commit_hooks()
                _create("c-late", "u-1", ["p-2"])

        transaction.set_commit_hooks(before=create_meanwhile)
        try:
            logic.erase("u-1", AT)
        finally:
            transaction.set_commit_hooks()
        assert store.get("c-1") is None and store.get("c-late") is None and store.get_many(store.carts_of("u-1")) == {}
        assert _index() == set() and store.erased("u-1")
        with pytest.raises(transaction.ConditionFailed):  # and none afterwards
            _create("c-after", "u-1", [])
        client = boto3.client("dynamodb")
        monkeypatch.setattr(transaction.aws, "client", lambda name: _Counting(client, calls))
        _create("c-2", "u-2", ["p-1"])
        calls.clear()
        logic.on_user_event(inbound(envelope("UserErased", {"userId": "u-2", "version": 2})))
        assert calls == ["get_item", "batch_get_item", "transact_write_items"]  # read, then mark and delete at once
        calls.clear()
        logic.on_user_event(inbound(envelope("UserErased", {"userId": "u-2", "version": 2})))  # redelivered
        assert calls == ["get_item", "batch_get_item"]  # marked, no cart left: nothing to write


def test_an_erasure_interrupted_between_its_transactions_is_finished_by_the_redelivery(as_service):
    from cart import logic, store

    full = [f"p-{n}" for n in range(store.MAX_PRODUCTS)]
    with as_service("cart"):
        for cart_id in ("c-1", "c-2", "c-3"):  # 42 actions each: the mark and two carts, then the third
            _create(cart_id, "u-1", full)
        commits = []

        def crash_on_the_second(uow):
            commits.append(uow)
            if len(commits) == 2:
                raise RuntimeError("the function stopped here")

        transaction.set_commit_hooks(before=crash_on_the_second)
        try:
            with pytest.raises(RuntimeError):
                logic.erase("u-1", AT)
        finally:
            transaction.set_commit_hooks()
        assert store.erased("u-1") and store.get("c-3") is not None  # marked, one cart left
        logic.on_user_event(inbound(envelope("UserErased", {"userId": "u-1", "version": 2})))  # redelivered
        assert store.get_many(store.carts_of("u-1")) == {} and _index() == set()


def test_a_cart_holds_at_most_as_many_lines_as_its_index_can_write_in_one_transaction():
    from pydantic import ValidationError

    from cart import store
    from cart.models import CartItems

    CartItems.model_validate({"items": [_line(f"p-{n}") for n in range(store.MAX_PRODUCTS)]})
    with pytest.raises(ValidationError, match="items"):
        CartItems.model_validate({"items": [_line(f"p-{n}") for n in range(store.MAX_PRODUCTS + 1)]})
    # replacing every line of a full cart: the old entries, the new ones, the cart and its event
    assert 2 * store.MAX_PRODUCTS + 2 <= transaction.MAX_TRANSACTION_ITEMS
