"""The Order aggregate as a table: from each state, what each decision does (pure, no I/O)."""

from __future__ import annotations

import pytest

from order import aggregate
from order.aggregate import Change, Order

PLACED = Change("Placed", {"userId": "u-1", "items": [{"productId": "p-1", "quantity": 1}],
                           "total": {"amount": 100, "currency": "EUR"}, "paymentMethod": "pm_card_visa",
                           "shippingAddress": {}, "correlationId": "c-1", "deadline": "2999-01-01"})
HISTORIES: dict[str, list[Change]] = {
    "PENDING": [PLACED],
    "PENDING+stock": [PLACED, Change("StockReserved")],
    "PENDING+authorised": [PLACED, Change("PaymentAuthorised", {"paymentId": "pay-1"})],
    "CONFIRMED": [PLACED, Change("Confirmed", {"paymentId": "pay-1"})],
    "CONFIRMED+requested": [PLACED, Change("Confirmed", {"paymentId": "pay-1"}),
                            Change("CancellationRequested", {"reason": "customer_request"})],
    "SHIPPED": [PLACED, Change("Confirmed", {"paymentId": "pay-1"}), Change("Shipped", {"shipmentId": "s-1"})],
    "DELIVERED": [PLACED, Change("Confirmed", {"paymentId": "pay-1"}), Change("Shipped", {"shipmentId": "s-1"}),
                  Change("Delivered")],
    "DELIVERED-before-dispatch": [PLACED, Change("Confirmed", {"paymentId": "pay-1"}), Change("Delivered")],
    "CANCELLED": [PLACED, Change("Cancelled", {"reason": "timeout"})],
}
DECISIONS = {
    "stock_reserved": aggregate.stock_reserved,
    "payment_authorised": lambda o: aggregate.payment_authorised(o, "pay-1"),
    "cancel": lambda o: aggregate.cancel(o, "payment_declined"),
    "request_cancel": aggregate.request_cancel,
    "shipment_cancelled": aggregate.shipment_cancelled,
    "shipment_created": lambda o: aggregate.shipment_created(o, "s-1"),
    "shipped": lambda o: aggregate.shipped(o, "s-1"),
    "delivered": aggregate.delivered,
    "refunded": aggregate.refunded,
}
# state -> decision -> (kinds of the changes it makes, the status after them); a missing entry: no change
TABLE: dict[str, dict[str, tuple[list[str], str]]] = {
    # Confirmed by whichever of the two facts comes last (the reservation, the authorisation).
    "PENDING": {"stock_reserved": (["StockReserved"], "PENDING"),
                "payment_authorised": (["PaymentAuthorised"], "PENDING"),
                "cancel": (["Cancelled"], "CANCELLED"), "request_cancel": (["Cancelled"], "CANCELLED"),
                "shipment_created": (["ShipmentCreated"], "PENDING"), "refunded": (["Refunded"], "PENDING")},
    "PENDING+stock": {"payment_authorised": (["PaymentAuthorised", "Confirmed"], "CONFIRMED"),
                      "cancel": (["Cancelled"], "CANCELLED"), "request_cancel": (["Cancelled"], "CANCELLED"),
                      "shipment_created": (["ShipmentCreated"], "PENDING"), "refunded": (["Refunded"], "PENDING")},
    "PENDING+authorised": {"stock_reserved": (["StockReserved", "Confirmed"], "CONFIRMED"),
                           "cancel": (["Cancelled"], "CANCELLED"), "request_cancel": (["Cancelled"], "CANCELLED"),
                           "shipment_created": (["ShipmentCreated"], "PENDING"),
                           "refunded": (["Refunded"], "PENDING")},
    "CONFIRMED": {"request_cancel": (["CancellationRequested"], "CONFIRMED"),
                  "shipment_created": (["ShipmentCreated"], "CONFIRMED"), "shipped": (["Shipped"], "SHIPPED"),
                  "delivered": (["Delivered"], "DELIVERED"), "refunded": (["Refunded"], "CONFIRMED")},
    "CONFIRMED+requested": {"shipment_cancelled": (["Cancelled"], "CANCELLED"),
                            "shipment_created": (["ShipmentCreated"], "CONFIRMED"),
                            "shipped": (["Shipped"], "SHIPPED"), "delivered": (["Delivered"], "DELIVERED"),
                            "refunded": (["Refunded"], "CONFIRMED")},
    "SHIPPED": {"delivered": (["Delivered"], "DELIVERED"), "refunded": (["Refunded"], "SHIPPED")},
    "DELIVERED": {"refunded": (["Refunded"], "DELIVERED")},
    "DELIVERED-before-dispatch": {"shipped": (["Shipped"], "DELIVERED"), "refunded": (["Refunded"], "DELIVERED"),
                                  "shipment_created": (["ShipmentCreated"], "DELIVERED")},
    "CANCELLED": {"shipment_created": (["ShipmentCreated"], "CANCELLED"), "refunded": (["Refunded"], "CANCELLED")},
}


def _state(name: str) -> Order:
    return aggregate.fold("o-1", [(change, "t") for change in HISTORIES[name]])


@pytest.mark.parametrize("state", list(HISTORIES))
@pytest.mark.parametrize("decision", list(DECISIONS))
def test_each_decision_from_each_state(state, decision):
    order = _state(state)
    changes = DECISIONS[decision](order)
    expected = TABLE[state].get(decision)
    if expected is None:
        assert changes == [], f"{decision} from {state} should change nothing"
        return
    kinds, status = expected
    assert [c.kind for c in changes] == kinds
    after = order
    for change in changes:
        after = aggregate.evolve(after, change, "t2")
    assert after.status == status and after.version == order.version + len(changes)


@pytest.mark.parametrize("state", list(HISTORIES))
def test_a_decision_applied_twice_changes_nothing_the_second_time(state):
    for decision in DECISIONS.values():
        order = _state(state)
        for change in decision(order):
            order = aggregate.evolve(order, change, "t2")
        assert decision(order) == []


@pytest.mark.parametrize("first, second", [("stock_reserved", "payment_authorised"),
                                           ("payment_authorised", "stock_reserved")])
def test_an_order_is_confirmed_with_the_authorised_payment_whichever_fact_comes_last(first, second):
    order = _state("PENDING")
    for decision in (first, second):
        for change in DECISIONS[decision](order):
            order = aggregate.evolve(order, change, "t2")
    assert (order.status, order.payment_id, order.stock_reserved, order.payment_authorised) == (
        "CONFIRMED", "pay-1", True, True)


def test_folding_a_history_is_replaying_it():
    order = _state("SHIPPED")
    assert (order.status, order.version, order.payment_id, order.shipment_id, order.dispatched) == (
        "SHIPPED", 3, "pay-1", "s-1", True)


# --- what a long-poll may wait for (GET /orders/{orderId}?waitFor=) --------------------------------------------
def test_the_next_statuses_are_exactly_the_moves_the_decisions_make():
    """NEXT_STATUSES tells a wait when an awaited status can never come: it must hold every move the decisions
    make (one missing would answer unreachable too early) and no move they never make (one too many would
    keep a wait that can only time out)."""
    made = {(_state(state).status, status) for state, row in TABLE.items() for _, status in row.values()}
    moves = {(before, after) for before, after in made if before != after}
    assert moves == {(before, after) for before, nexts in aggregate.NEXT_STATUSES.items() for after in nexts}


@pytest.mark.parametrize("status, awaited, outcome", [
    ("PENDING", {"CONFIRMED", "CANCELLED"}, None),
    ("CONFIRMED", {"CONFIRMED", "CANCELLED"}, "reached"),
    ("CANCELLED", {"CONFIRMED"}, "unreachable"),  # final, and not the awaited one
    ("SHIPPED", {"CONFIRMED"}, "unreachable"),  # past it: an order never goes back
    ("CONFIRMED", {"DELIVERED"}, None),  # delivered may follow confirmation directly
    ("PENDING", {"DELIVERED"}, None),
    ("SHIPPED", {"CANCELLED"}, "unreachable"),  # a parcel on its way is not cancelled any more
    ("DELIVERED", {"SHIPPED", "DELIVERED"}, "reached"),
])
def test_a_wait_is_over_when_the_status_is_awaited_or_can_no_longer_come(status, awaited, outcome):
    assert aggregate.wait_outcome(status, frozenset(awaited)) == outcome
