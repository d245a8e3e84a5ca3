"""Payment's typed record (functions/payment/store.py): what is stored is what was stored before it was typed
(the intent's first write included), attributes it does not know survive, the intent is the first one learnt
and a flag once set stays set."""

from __future__ import annotations

from dataclasses import fields

from payment import store
from shopstream import dynamo
from shopstream.events import Money
from shopstream.transaction import UnitOfWork

EUR_10 = Money(amount=1000, currency="EUR")


def _stored(payment_id: str) -> dict[str, object]:
    item = dynamo.get(f"PAYMENT#{payment_id}", "PAYMENT")
    assert item is not None
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


def test_every_field_is_an_attribute_of_the_item():
    assert set(store._ATTRIBUTES.values()) == {f.name for f in fields(store.Payment)} - {"other"}


def test_the_intents_first_write_stores_the_claimed_payment_and_hands_it_back(as_service):
    intent = store.Fact(user_id="u-1", amount=EUR_10, payment_method="pm_card_visa")
    claimed = store.Payment("pay_o-1", "o-1", status="AUTHORISING", version=1).merged(intent)
    with as_service("payment"):
        assert store.record_intent(claimed) == (True, claimed)
        assert _stored("pay_o-1") == {
            "paymentId": "pay_o-1", "orderId": "o-1", "status": "AUTHORISING", "version": 1, "userId": "u-1",
            "amount": {"amount": 1000, "currency": "EUR"}, "paymentMethod": "pm_card_visa"}  # no flag: none set
        assert store.record_intent(claimed) == (False, claimed)  # a redelivery: the payment as stored comes back
        assert store.read("pay_o-1") == claimed


def test_a_saved_payment_is_read_back_the_same_with_what_it_does_not_know(as_service):
    with as_service("payment"):
        uow = UnitOfWork()
        uow.put({"pk": "PAYMENT#pay_o-2", "sk": "PAYMENT", "paymentId": "pay_o-2", "orderId": "o-2",
                 "status": "PENDING", "version": 1, "stockReserved": True, "riskScore": 7})
        uow.commit()
        read = store.read("pay_o-2")
        assert read is not None and read.stock_reserved and read.other == {"riskScore": 7}
        cancelled = read.merged(store.Fact(user_id="u-2", cancelled=True))
        uow = UnitOfWork()
        store.save(uow, cancelled, read.version)
        uow.commit()
        assert _stored("pay_o-2") == {"paymentId": "pay_o-2", "orderId": "o-2", "status": "PENDING", "version": 2,
                                      "userId": "u-2", "stockReserved": True, "cancelled": True, "riskScore": 7}
        assert store.read("pay_o-3") is None


def test_the_intent_is_the_first_one_learnt_and_flags_stay_set():
    known = store.Payment("pay_o-4", "o-4", user_id="u-4", amount=EUR_10, payment_method="pm_card_visa",
                          stock_reserved=True)
    other = store.Fact(user_id="u-x", amount=Money(amount=1, currency="USD"), payment_method="pm_x")
    assert known.merged(other) == known
    assert known.merged(store.Fact(cancelled=True)) == store.Payment(
        "pay_o-4", "o-4", user_id="u-4", amount=EUR_10, payment_method="pm_card_visa", stock_reserved=True,
        cancelled=True)
    assert store.Payment("pay_o-5", "o-5").merged(other).amount == other.amount
