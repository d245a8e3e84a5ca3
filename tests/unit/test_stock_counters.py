"""A product's stock split over counters (inventory): reservations of one product spread over them, a
line is taken whole from one counter, and no interleaving oversells (moto; logic called directly)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest

from shopstream import transaction
from tests.support import present
from tests.unit.test_interleavings import cancelled, created, envelope, inbound

if TYPE_CHECKING:
    from inventory.store import Reservation, Stock


@pytest.fixture
def inventory(as_service, monkeypatch):
    """Run as the inventory service, with products created with ``counters`` counters."""
    from inventory import logic
    from inventory.settings import InventorySettings

    def counters(n: int) -> None:
        monkeypatch.setattr(logic, "settings", lambda: InventorySettings(inventory_stock_shards=n))

    counters(4)
    with as_service("inventory"):
        yield counters


def _product(product_id: str, *units: int) -> None:
    """A product with one counter per entry of ``units``, holding that many units each."""
    from inventory import logic, store
    from shopstream.transaction import UnitOfWork

    data = {"productId": product_id, "sku": "S", "name": "N", "price": {"amount": 1, "currency": "EUR"}}
    transaction.try_commit(store.create_stock(UnitOfWork(), product_id, len(units)))
    logic.on_product_event(inbound(envelope("ProductCreated", data)))  # known already: nothing changes
    uow = UnitOfWork()
    for shard, n in zip(store.get_shards(product_id, 1), units, strict=True):
        if n:
            store.change_shard(uow, shard, available=n, received=n)
    uow.commit()


def _levels(product_id: str) -> list[tuple[int, int, int]]:
    """(available, reserved, sold) of each counter, in order; every counter's own books checked."""
    from inventory import store

    shards = store.get_shards(product_id, 1)
    for s in shards:
        assert s.received == s.available + s.reserved + s.sold, s
        assert min(s.available, s.reserved, s.sold) >= 0, s
    return [(s.available, s.reserved, s.sold) for s in shards]


def _reserve(order_id: str, product: str = "p-1", quantity: int = 1) -> str:
    from inventory import logic

    logic.on_order_event(inbound(envelope("OrderCreated", created(order_id, product, quantity))))
    return _reservation(order_id).status


def _reservation(order_id: str) -> Reservation:
    from inventory import store

    return present(store.get_reservation(order_id))


def _stock(product_id: str) -> Stock:
    from inventory import store

    return present(store.get_stock(product_id, 1))


def _pay(order_id: str) -> None:
    from inventory import logic

    logic.on_payment_event(inbound(envelope("PaymentProcessed", {
        "paymentId": f"pay-{order_id}", "orderId": order_id, "userId": "u-1",
        "amount": {"amount": 1, "currency": "EUR"}, "providerReference": f"ch-{order_id}"})))


def test_an_adjustment_fills_the_emptiest_counters_and_removes_from_the_fullest(inventory):
    from inventory import logic, store

    _product("p-1", 0, 1, 0, 0)
    shards = store.get_shards("p-1", 1)
    assert [(s.shard, units) for s, units in logic.spread(10, shards)] == [(0, 3), (2, 3), (3, 2), (1, 2)]
    _product("p-2", 3, 1, 3, 2)
    assert [(s.shard, units) for s, units in logic.spread(-5, store.get_shards("p-2", 1))] == [(2, -3), (0, -2)]


def test_orders_of_one_product_spread_over_its_counters_until_none_is_left(inventory):

    _product("p-1", 10, 10, 10, 10)
    statuses = [_reserve(f"o-{n}") for n in range(40)]
    assert statuses == ["RESERVED"] * 40
    taken = [_reservation(f"o-{n}").taken for n in range(40)]
    assert all(len(t) == 1 and t[0].quantity == 1 for t in taken)  # a line is taken whole from one counter
    first_choices = {t[0].shard for t in taken[:8]}
    assert len(first_choices) >= 3  # orders start on different counters
    assert _levels("p-1") == [(0, 10, 0)] * 4
    assert _reserve("o-late") == "FAILED"  # nothing left anywhere: no oversell


def test_a_line_no_counter_can_hold_gathers_units_into_one_first(inventory, outbox):

    _product("p-1", 2, 2, 2, 2)
    assert _reserve("o-1", quantity=7) == "RESERVED"
    [taken] = _reservation("o-1").taken
    levels = _levels("p-1")
    assert levels[taken.shard] == (0, 7, 0) and sum(a for a, _, _ in levels) == 1
    moved = [e for e in outbox if e.event_type == "InventoryAdjusted"]
    assert moved and all(e.data["reason"] == "rebalanced" for e in moved)
    assert sum(e.data["delta"] for e in moved) == 0  # units moved, none created or lost
    assert _reserve("o-2", quantity=2) == "FAILED"  # 1 left in all


def test_cancelling_and_paying_go_back_to_the_counters_the_units_came_from(inventory):
    from inventory import logic

    _product("p-1", 3, 3, 3, 3)
    orders = [f"o-{n}" for n in range(6)]
    for order_id in orders:
        assert _reserve(order_id, quantity=2) == "RESERVED"
    for order_id in orders[:3]:
        _pay(order_id)
    for order_id in orders[3:]:
        logic.on_order_event(inbound(envelope("OrderCancelled", cancelled(order_id, quantity=2))))
    levels = _levels("p-1")
    assert sum(s for _, _, s in levels) == 6 and sum(r for _, r, _ in levels) == 0
    assert sum(a for a, _, _ in levels) == 6


def test_two_reservations_racing_for_the_last_units_of_one_counter_never_oversell(inventory):
    """The other order commits between this one's read and its write: this one reads again."""

    _product("p-1", 1, 0, 0, 0)
    raced = []

    def other_order_first(uow):
        if uow is not None and any(e.event_type == "InventoryReserved" for e in uow.events):
            transaction.set_commit_hooks()
            raced.append(_reserve("o-other"))

    transaction.set_commit_hooks(before=other_order_first)
    try:
        status = _reserve("o-1")
    finally:
        transaction.set_commit_hooks()
    assert raced == ["RESERVED"] and status == "FAILED"
    assert _levels("p-1") == [(0, 1, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0)]
    assert _reservation("o-1").taken == ()


def test_a_product_created_with_more_counters_than_the_setting_is_read_whole(inventory):
    from inventory import store

    _product("p-1", 0, 0, 0, 0, 0, 5)
    inventory(2)  # the setting changed after the product was created
    assert _reserve("o-1", quantity=5) == "RESERVED"
    assert _reservation("o-1").taken == (store.Taken("p-1", 5, 5),)


@pytest.mark.parametrize("seed", range(6))
def test_any_mix_of_reservations_cancellations_payments_and_adjustments_keeps_every_counter_whole(inventory, seed):
    from inventory import logic
    from inventory.models import Adjustment
    from shopstream.request import Caller, Request, serving

    rng = random.Random(seed)
    counters = rng.randint(1, 5)
    _product("p-1", *(rng.randint(0, 4) for _ in range(counters)))
    reserved: dict[str, int] = {}
    paid: dict[str, int] = {}
    for step in range(40):
        action = rng.choice(["order", "order", "cancel", "pay", "adjust"])
        if action == "order":
            quantity = rng.randint(1, 4)
            if _reserve(f"o-{step}", quantity=quantity) == "RESERVED":
                reserved[f"o-{step}"] = quantity
        elif action == "cancel" and (reserved or paid):
            order_id = rng.choice(sorted({**reserved, **paid}))
            quantity = reserved.pop(order_id) if order_id in reserved else paid.pop(order_id)
            logic.on_order_event(inbound(envelope("OrderCancelled", cancelled(order_id, quantity=quantity))))
        elif action == "pay" and reserved:
            order_id = rng.choice(sorted(reserved))
            paid[order_id] = reserved.pop(order_id)
            _pay(order_id)
        elif action == "adjust":
            delta = rng.randint(-_stock("p-1").available, 6) or 1
            caller = Caller(user_id="admin-1", groups=frozenset({"admin"}), correlation_id=f"c-{step}")
            with serving(Request("inventory", "POST", "/inventory/p-1/adjustments", caller)):
                logic.adjust(caller, "p-1", Adjustment(delta=delta, reason="count"))
        levels = _levels("p-1")  # each counter's books, at every step
        assert sum(r for _, r, _ in levels) == sum(reserved.values()), step
        assert sum(s for _, _, s in levels) == sum(paid.values()), step


def test_the_catalog_shows_the_sum_of_each_counters_newest_level_whatever_the_order_of_arrival(as_service):
    from catalog import logic, store
    from shopstream.transaction import UnitOfWork

    def adjusted(shard: int, available: int, version: int):
        return inbound(envelope("InventoryAdjusted", {"productId": "p-1", "delta": 1, "reason": "count", "level": {
            "productId": "p-1", "shard": shard, "quantity": available, "available": available, "reserved": 0,
            "version": version}}))

    levels = [adjusted(0, 3, 2), adjusted(0, 5, 3), adjusted(1, 4, 2), adjusted(1, 1, 3), adjusted(2, 7, 9)]
    for seed in range(5):
        arrivals = levels + levels[:2]  # duplicates and redeliveries too
        random.Random(seed).shuffle(arrivals)
        with as_service("catalog"):
            uow = UnitOfWork()
            store.create(uow, {"productId": "p-1", "sku": f"S{seed}", "name": "N", "price": {"amount": 1,
                               "currency": "EUR"}, "status": "ACTIVE", "version": 1})
            uow.commit()
            for event in arrivals:
                logic.on_stock_event(event)
            assert logic.get("p-1").availability.available == 5 + 1 + 7
            uow = UnitOfWork()
            uow.delete({"pk": "PRODUCT#p-1", "sk": "PRODUCT"})
            uow.delete({"pk": f"SKU#S{seed}", "sk": "SKU"})
            uow.commit()


def test_a_stock_level_reaches_the_catalog_by_one_conditional_update_not_a_transaction(as_service):
    """Newest version wins by the update's own condition: no read, no transaction (1 write unit, not 2)."""
    from catalog import logic, store
    from shopstream import aws
    from shopstream.transaction import UnitOfWork

    def adjusted(available: int, version: int):
        return inbound(envelope("InventoryAdjusted", {"productId": "p-1", "delta": 1, "reason": "count", "level": {
            "productId": "p-1", "shard": 0, "quantity": available, "available": available, "reserved": 0,
            "version": version}}))

    with as_service("catalog"):
        uow = UnitOfWork()
        store.create(uow, {"productId": "p-1", "sku": "S", "name": "N", "price": {"amount": 1, "currency": "EUR"},
                           "status": "ACTIVE", "version": 1})
        uow.commit()
        operations: list[str] = []
        client = aws.client("dynamodb")
        client.meta.events.register("before-call.dynamodb", lambda model, **_: operations.append(model.name),
                                    unique_id="count-operations")
        try:
            logic.on_stock_event(adjusted(3, 2))
            logic.on_stock_event(adjusted(9, 1))  # older: refused by the condition
        finally:
            client.meta.events.unregister("before-call.dynamodb", unique_id="count-operations")
        assert operations == ["UpdateItem", "UpdateItem"]
        assert logic.get("p-1").availability.available == 3


def test_a_restock_racing_a_reservation_reads_again_instead_of_refusing(inventory):
    from inventory import logic
    from inventory.models import Adjustment
    from shopstream.request import Caller, Request, serving

    _product("p-1", 2, 2, 2, 2)

    def reserve_meanwhile(uow):
        if uow is not None and any(e.event_type == "InventoryAdjusted" for e in uow.events):
            transaction.set_commit_hooks()
            assert _reserve("o-1") == "RESERVED"

    caller = Caller(user_id="admin-1", groups=frozenset({"admin"}), correlation_id="c-1", idempotency_key="k-1")
    transaction.set_commit_hooks(before=reserve_meanwhile)
    try:
        with serving(Request("inventory", "POST", "/inventory/p-1/adjustments", caller)):
            view = logic.adjust(caller, "p-1", Adjustment(delta=8, reason="delivery"))
        with serving(Request("inventory", "POST", "/inventory/p-1/adjustments", caller)):
            again = logic.adjust(caller, "p-1", Adjustment(delta=8, reason="delivery"))  # the retried request
    finally:
        transaction.set_commit_hooks()
    stock = _stock("p-1")
    assert (stock.received, stock.available, stock.reserved) == (16, 15, 1)
    assert (view.available, again.available) == (15, 15)
