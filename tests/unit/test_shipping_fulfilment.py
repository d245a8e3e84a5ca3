"""Shipping's fulfilment record as a typed record (functions/shipping/store.py): what is stored is what was there
before it was typed, attributes it does not know survive, and a customer is the first one learnt."""

from __future__ import annotations

from dataclasses import fields

from shipping import store
from shopstream import dynamo
from shopstream.transaction import UnitOfWork
from tests.support import present


def test_every_field_is_an_attribute_of_the_item():
    assert set(store._ATTRIBUTES.values()) == {f.name for f in fields(store.Fulfilment)} - {"other"}


def test_a_fulfilment_is_stored_with_only_what_was_learnt_and_read_back_the_same(as_service):
    with as_service("shipping"):
        new = store.get_fulfilment("o-1")
        assert new == store.Fulfilment("o-1") and new.version == 0
        learnt = new.merged(user_id="u-1", confirmed=True, items=({"productId": "p-1", "quantity": 2},))
        uow = UnitOfWork()
        store.save_fulfilment(uow, learnt, new.version)
        uow.commit()
        item = dynamo.get("FULFILMENT#o-1", "ORDER")
        assert item is not None
        assert {k: v for k, v in item.items() if k not in ("pk", "sk")} == {
            "orderId": "o-1", "status": "AWAITING_PAYMENT", "version": 1, "userId": "u-1", "confirmed": True,
            "items": [{"productId": "p-1", "quantity": 2}]}  # no cancelled, address or requestAnswered: not learnt
        assert store.get_fulfilment("o-1") == learnt.merged(version=1)


def test_attributes_it_does_not_know_survive_a_write(as_service):
    with as_service("shipping"):
        uow = UnitOfWork()
        uow.put({"pk": "FULFILMENT#o-2", "sk": "ORDER", "orderId": "o-2", "status": "AWAITING_PAYMENT", "version": 1,
                 "userId": "u-2", "giftWrap": "red"})
        uow.commit()
        read = store.get_fulfilment("o-2")
        assert read.other == {"giftWrap": "red"}
        uow = UnitOfWork()
        store.save_fulfilment(uow, read.merged(cancelled=True), read.version)
        uow.commit()
        assert present(dynamo.get("FULFILMENT#o-2", "ORDER"))["giftWrap"] == "red"


def test_the_customer_is_the_first_one_learnt():
    known = store.Fulfilment("o-3", user_id="u-3")
    assert known.merged(user_id="someone-else", confirmed=True) == store.Fulfilment("o-3", user_id="u-3",
                                                                                    confirmed=True)
    assert store.Fulfilment("o-3").merged(user_id="u-3").user_id == "u-3"
