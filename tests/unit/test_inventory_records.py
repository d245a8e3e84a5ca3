"""Inventory's typed records (functions/inventory/store.py): a reservation and a product's counters are stored as
they were before they were typed, and read back the same."""

from __future__ import annotations

from inventory import store
from shopstream import dynamo
from shopstream.events import ItemQuantity
from shopstream.transaction import UnitOfWork


def test_a_reservation_is_stored_as_before_and_read_back_the_same(as_service):
    reservation = store.Reservation("o-1", "RESERVED", lines=(ItemQuantity(product_id="p-1", quantity=3),),
                                    taken=(store.Taken("p-1", 2, 3),))
    with as_service("inventory"):
        uow = UnitOfWork()
        store.create_reservation(uow, reservation)
        uow.commit()
        item = dynamo.get("RESERVATION#o-1", "RESERVATION")
        assert item is not None
        assert {k: v for k, v in item.items() if k not in ("pk", "sk")} == {
            "orderId": "o-1", "status": "RESERVED", "lines": [{"productId": "p-1", "quantity": 3}],
            "taken": [{"productId": "p-1", "shard": 2, "quantity": 3}]}
        assert store.get_reservation("o-1") == reservation
        assert store.get_reservation("o-2") is None


def test_counters_are_read_with_their_levels_and_summed(as_service):
    with as_service("inventory"):
        uow = store.create_stock(UnitOfWork(), "p-1", 2)
        uow.commit()
        first, second = store.get_shards("p-1", 2)
        assert first == store.StockCounter(product_id="p-1", shard=0, shards=2, available=0, reserved=0, sold=0,
                                           received=0, version=1, status="ACTIVE")
        uow = UnitOfWork()
        store.change_shard(uow, first, available=4, received=4)
        store.change_shard(uow, second, available=1, reserved=2, received=3)
        uow.commit()
        assert store.get_shard_items([("p-1", 1)]) == {("p-1", 1): store.StockCounter(
            product_id="p-1", shard=1, shards=2, available=1, reserved=2, sold=0, received=3, version=2,
            status="ACTIVE")}
        assert store.get_stock("p-1", 2) == store.Stock(product_id="p-1", status="ACTIVE", available=5, reserved=2,
                                                        sold=0, received=7)
        assert not store.adjustment_made("adj-1")
        uow = UnitOfWork()
        store.record_adjustment(uow, "adj-1", "p-1", 5)
        uow.commit()
        assert store.adjustment_made("adj-1")
