"""Handlers against the orders in which a deployment can deliver events (moto; logic called directly).

Each test reproduces one interleaving that used to break money or stock.
"""

from __future__ import annotations

import pytest

from local import naming
from shopstream import catalog
from shopstream.consumer import InboundEvent
from shopstream.envelope import EventEnvelope, event_from_command
from shopstream.events import model_of
from tests.support import present

ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}


def envelope(event_type: str, data: dict, *, service: str | None = None) -> EventEnvelope:
    producer = service or catalog.producers_of(event_type)[0]
    return event_from_command(event_type=event_type, data=data, service=producer, correlation_id="corr-x",
                              user_id=data.get("userId"))


def inbound(env: EventEnvelope) -> InboundEvent:
    spec = catalog.event(env.event_type, env.event_version)
    return InboundEvent(env, model_of(spec).model_validate(env.data), spec.topic, 0, 0)


def created(order_id: str = "o-1", product: str = "p-1", quantity: int = 2, method: str = "pm_card_visa") -> dict:
    return {"orderId": order_id, "userId": "u-1",
            "items": [{"productId": product, "quantity": quantity, "unitPrice": {"amount": 500, "currency": "EUR"}}],
            "total": {"amount": 500 * quantity, "currency": "EUR"}, "paymentMethod": method,
            "shippingAddress": ADDRESS}


def cancelled(order_id: str = "o-1", product: str = "p-1", quantity: int = 2, previous: str = "PENDING") -> dict:
    return {"orderId": order_id, "userId": "u-1", "reason": "customer_request", "previousStatus": previous,
            "items": [{"productId": product, "quantity": quantity}]}


def reserved(order_id: str = "o-1", product: str = "p-1", quantity: int = 2) -> dict:
    return {"orderId": order_id, "lines": [{"productId": product, "quantity": quantity}],
            "levels": [{"productId": product, "quantity": 10, "available": 8, "reserved": 2, "version": 3}]}


def customer_key(as_service, user_id: str = "u-1") -> None:
    """The customer's key (the user service creates it at registration): what is kept of them is sealed."""
    from shopstream import personal
    from shopstream.transaction import UnitOfWork

    with as_service("user"):
        uow = UnitOfWork()
        personal.create_key(uow, user_id)
        uow.commit()


def emitted(events: list[EventEnvelope]) -> list[str]:
    return [e.event_type for e in events]


# --- inventory ---------------------------------------------------------------------------------
def _messages_to(user_id: str) -> list[dict]:
    """The notification table's messages to a customer (no index finds them: nothing but a test asks)."""
    from shopstream import aws, dynamo

    items = aws.client("dynamodb").scan(TableName=naming.table("notification"))["Items"]
    return [i for i in map(dynamo.from_attributes, items)
            if i["pk"].startswith("NOTIFICATION#") and i.get("userId") == user_id]


def _stock(product: str, available: int) -> None:
    from inventory import store
    from shopstream.transaction import UnitOfWork

    uow = UnitOfWork()
    store.create_stock(uow, product, shards=1)
    uow.commit()
    [shard] = store.get_shards(product, 1)
    uow = UnitOfWork()
    store.change_shard(uow, shard, available=available, received=available)
    uow.commit()


def test_a_cancel_that_arrives_before_its_order_leaves_a_tombstone_in_inventory(as_service, outbox):
    from inventory import logic, store

    with as_service("inventory"):
        _stock("p-1", 5)
        logic.on_order_event(inbound(envelope("OrderCancelled", cancelled())))
        logic.on_order_event(inbound(envelope("OrderCreated", created())))  # the late create
        stock, reservation = store.get_stock("p-1", 1), store.get_reservation("o-1")
        assert stock is not None and (stock.available, stock.reserved) == (5, 0)
        assert reservation is not None and reservation.status == "CANCELLED"
    assert emitted(outbox) == []


def test_a_discontinuation_that_arrives_before_the_creation_keeps_the_product_discontinued(as_service):
    from inventory import logic, store

    data = {"productId": "p-9", "sku": "S", "name": "N", "price": {"amount": 1, "currency": "EUR"}}
    with as_service("inventory"):
        logic.on_product_event(inbound(envelope("ProductDiscontinued", {"productId": "p-9", "version": 2})))
        logic.on_product_event(inbound(envelope("ProductCreated", data)))
        stock = store.get_stock("p-9", 1)
        assert stock is not None and stock.status == "DISCONTINUED"


# --- payment -----------------------------------------------------------------------------------
def reservation_failed(order_id: str = "o-1", product: str = "p-1") -> dict:
    return {"orderId": order_id, "reason": "out_of_stock",
            "shortages": [{"productId": product, "requested": 2, "available": 1}]}


class RacingProvider:
    """The simulator, with something happening while one of its calls is in flight (once), and the calls
    it was asked, in order."""

    def __init__(self, during: str | None = None, race=None):
        from payment.provider import SimulatedProvider

        self.inner = SimulatedProvider(fault_rate=0.0)
        self.during, self.race = during, race
        self.asked: list[str] = []

    def __getattr__(self, call):
        def answer(**kwargs):
            self.asked.append(call)
            result = getattr(self.inner, call)(**kwargs)
            if call == self.during and self.race is not None:
                race, self.race = self.race, None
                race()
            return result
        return answer


def _ledger(prefix: str) -> list[dict]:
    import boto3

    from shopstream.dynamo import from_attributes

    items = boto3.client("dynamodb").scan(TableName=naming.table("payment"))["Items"]
    return [from_attributes(i) for i in items if from_attributes(i)["pk"].startswith(prefix)]


def _calls() -> dict[str, int]:
    """The provider's ledger: how much each call (by its key's prefix) moved for o-1's payment."""
    return {r["pk"].removeprefix("PROVIDER#").removesuffix("_pay_o-1"): int(r["amount"])
            for r in _ledger("PROVIDER#") if r["sk"] == "LEDGER"}


def test_a_capture_in_flight_when_the_cancel_commits_is_refunded(as_service, outbox, monkeypatch):
    from payment import logic, provider, store

    cancel = inbound(envelope("OrderCancelled", cancelled(previous="CONFIRMED")))
    monkeypatch.setattr(provider, "provider", RacingProvider("capture", lambda: logic.on_order_event(cancel)))
    with as_service("payment"):
        logic.on_order_event(inbound(envelope("OrderCreated", created())))
        logic.on_inventory_event(inbound(envelope("InventoryReserved", reserved())))
        assert present(store.get("pay_o-1"))["status"] == "REFUNDED"
        assert _calls() == {"auth": 1000, "capture": 1000, "refund": 1000}
    assert emitted(outbox) == ["PaymentInitiated", "PaymentAuthorised", "PaymentProcessed", "PaymentRefunded"]


def test_a_reservation_that_lands_while_the_authorisation_is_in_flight_is_captured_by_the_authoriser(
        as_service, outbox, monkeypatch):
    """The reservation's handler only notes the stock (it never asks the provider to authorise what another
    invocation is authorising); the authoriser loses its write to that note, goes on from it with the answer
    it already has, and captures."""
    from payment import logic, provider, store

    reservation = inbound(envelope("InventoryReserved", reserved()))
    racing = RacingProvider("authorise", lambda: logic.on_inventory_event(reservation))
    monkeypatch.setattr(provider, "provider", racing)
    with as_service("payment"):
        logic.on_order_event(inbound(envelope("OrderCreated", created())))
        assert present(store.get("pay_o-1"))["status"] == "CAPTURED"
    assert racing.asked == ["authorise", "capture"]
    assert emitted(outbox) == ["PaymentInitiated", "PaymentAuthorised", "PaymentProcessed"]


def test_a_cancel_while_the_authorisation_is_in_flight_finishes_it_and_voids_it(as_service, outbox, monkeypatch):
    """The order's own events finish an authorisation in flight (as a redelivery of its OrderCreated would, or
    the saga's timeout after that record was given up): the same key, the same answer, then the void."""
    from payment import logic, provider, store

    cancel = inbound(envelope("OrderCancelled", cancelled()))
    racing = RacingProvider("authorise", lambda: logic.on_order_event(cancel))
    monkeypatch.setattr(provider, "provider", racing)
    with as_service("payment"):
        logic.on_order_event(inbound(envelope("OrderCreated", created())))
        logic.on_inventory_event(inbound(envelope("InventoryReserved", reserved())))  # late: takes nothing
        assert present(store.get("pay_o-1"))["status"] == "VOIDED"
        assert _calls() == {"auth": 1000, "void": 0}
    assert racing.asked == ["authorise", "authorise", "void"]
    assert emitted(outbox) == ["PaymentInitiated", "PaymentAuthorised", "PaymentVoided"]
    assert outbox[-1].data["reason"] == "order_cancelled"


def test_an_authorisation_abandoned_in_flight_is_finished_and_voided_by_the_sagas_timeout(as_service, outbox,
                                                                                          monkeypatch):
    """The OrderCreated's invocation timed out after the provider recorded the authorisation, and its record was
    given up: the reservation only notes the stock; the order's timeout cancel finishes the authorisation (same
    key, same answer) and voids it. No authorisation is left holding the customer's money."""
    from payment import logic, provider, store
    from payment.provider import ProviderTimeout, SimulatedProvider

    simulator = SimulatedProvider(fault_rate=0.0)
    monkeypatch.setattr(provider, "provider", simulator)
    with as_service("payment"):
        simulator.timeouts_to_inject = logic.PROVIDER_ATTEMPTS
        with pytest.raises(ProviderTimeout):
            logic.on_order_event(inbound(envelope("OrderCreated", created())))
        logic.on_inventory_event(inbound(envelope("InventoryReserved", reserved())))
        payment = store.get("pay_o-1")
        assert payment is not None
        assert (payment["status"], payment["stockReserved"]) == ("AUTHORISING", True)
        assert simulator.calls == logic.PROVIDER_ATTEMPTS  # the reservation did not ask the provider
        logic.on_order_event(inbound(envelope("OrderCancelled", {**cancelled(), "reason": "timeout"})))
        assert present(store.get("pay_o-1"))["status"] == "VOIDED"
        assert _calls() == {"auth": 1000, "void": 0}
    assert emitted(outbox) == ["PaymentInitiated", "PaymentAuthorised", "PaymentVoided"]


@pytest.mark.parametrize("failure_first", [False, True])
def test_a_failed_reservation_voids_the_authorisation_or_prevents_it(as_service, outbox, failure_first):
    from payment import logic, store

    events = [inbound(envelope("OrderCreated", created())),
              inbound(envelope("InventoryReservationFailed", reservation_failed()))]
    with as_service("payment"):
        for event in reversed(events) if failure_first else events:
            handle = logic.on_inventory_event if event.event_type.startswith("Inventory") else logic.on_order_event
            handle(event)
        payment = store.get("pay_o-1")
        assert payment is not None
        if failure_first:  # nothing was authorised: nothing to void
            assert (payment["status"], _calls()) == ("CANCELLED", {})
        else:
            assert (payment["status"], _calls()) == ("VOIDED", {"auth": 1000, "void": 0})
    if failure_first:
        assert emitted(outbox) == []
    else:
        assert emitted(outbox) == ["PaymentInitiated", "PaymentAuthorised", "PaymentVoided"]
        assert outbox[-1].data["reason"] == "stock_unavailable"


def test_a_declined_authorisation_fails_the_payment_and_the_reservation_takes_nothing(as_service, outbox):
    from payment import logic, store

    with as_service("payment"):
        logic.on_order_event(inbound(envelope("OrderCreated", created(method="pm_card_chargeDeclined"))))
        logic.on_inventory_event(inbound(envelope("InventoryReserved", reserved())))
        assert present(store.get("pay_o-1"))["status"] == "FAILED"
        assert _calls() == {"auth": 0}
    assert emitted(outbox) == ["PaymentInitiated", "PaymentFailed"]
    assert outbox[-1].data["declineCode"] == "card_declined"


def test_a_capture_whose_answer_was_lost_is_finished_by_the_redelivery_without_capturing_twice(
        as_service, outbox, monkeypatch):
    from payment import logic, provider, store
    from payment.provider import ProviderTimeout, SimulatedProvider

    simulator = SimulatedProvider(fault_rate=0.0)
    monkeypatch.setattr(provider, "provider", simulator)
    reservation = inbound(envelope("InventoryReserved", reserved()))
    with as_service("payment"):
        logic.on_order_event(inbound(envelope("OrderCreated", created())))
        simulator.timeouts_to_inject = logic.PROVIDER_ATTEMPTS  # every attempt of this invocation: after recording
        with pytest.raises(ProviderTimeout):
            logic.on_inventory_event(reservation)
        assert present(store.get("pay_o-1"))["status"] == "CAPTURING"
        logic.on_inventory_event(reservation)  # the mapping's retry
        assert present(store.get("pay_o-1"))["status"] == "CAPTURED"
        assert _calls() == {"auth": 1000, "capture": 1000}
    assert emitted(outbox) == ["PaymentInitiated", "PaymentAuthorised", "PaymentProcessed"]


def test_a_cancel_before_the_order_and_the_reservation_means_no_authorisation_at_all(as_service, outbox):
    from payment import logic, store

    with as_service("payment"):
        logic.on_order_event(inbound(envelope("OrderCancelled", cancelled())))
        logic.on_inventory_event(inbound(envelope("InventoryReserved", reserved())))
        logic.on_order_event(inbound(envelope("OrderCreated", created())))
        assert present(store.get("pay_o-1"))["status"] == "CANCELLED"
        assert _ledger("PROVIDER#") == []
    assert emitted(outbox) == []


def test_a_reservation_seen_before_the_order_is_authorised_and_captured_when_the_order_arrives(as_service, outbox):
    from payment import logic, store

    with as_service("payment"):
        logic.on_inventory_event(inbound(envelope("InventoryReserved", reserved())))
        assert present(store.get("pay_o-1"))["status"] == "PENDING"  # waiting for the amount, not failing
        logic.on_order_event(inbound(envelope("OrderCreated", created())))
        assert present(store.get("pay_o-1"))["status"] == "CAPTURED"
    assert emitted(outbox) == ["PaymentInitiated", "PaymentAuthorised", "PaymentProcessed"]


def test_replaying_every_payment_event_authorises_captures_and_refunds_once(as_service, outbox):
    from payment import logic, store

    events = [inbound(envelope("OrderCreated", created())), inbound(envelope("InventoryReserved", reserved())),
              inbound(envelope("OrderCancelled", cancelled(previous="CONFIRMED")))]
    with as_service("payment"):
        for _ in range(2):  # the second pass is a replay (no idempotency records involved here)
            logic.on_order_event(events[0])
            logic.on_inventory_event(events[1])
            logic.on_order_event(events[2])
        assert present(store.get("pay_o-1"))["status"] == "REFUNDED"
        assert _calls() == {"auth": 1000, "capture": 1000, "refund": 1000}
    assert emitted(outbox) == ["PaymentInitiated", "PaymentAuthorised", "PaymentProcessed", "PaymentRefunded"]


def test_a_payment_whose_facts_arrive_in_the_usual_order_reads_nothing(as_service, outbox, monkeypatch):
    """The order's intent and the claim of its authorisation are one write, its outcome one transaction; the
    reservation claims the capture in one write and records it in one transaction. A redelivery decides from
    what its failed write hands back."""
    from payment import logic, provider
    from payment.provider import ProviderResult
    from shopstream import aws

    class Answering:  # the provider's own storage is not the handler's to count
        def authorise(self, **kwargs):
            return ProviderResult(True, "pi_1", None)

        def capture(self, **kwargs):
            return ProviderResult(True, "ch_1", None)

    monkeypatch.setattr(provider, "provider", Answering())
    calls: list[str] = []
    with as_service("payment"):
        aws.client("dynamodb").meta.events.register("before-call.dynamodb",
                                                    lambda model, **_: calls.append(model.name))
        order = inbound(envelope("OrderCreated", created()))
        logic.on_order_event(order)
        assert calls == ["UpdateItem", "TransactWriteItems"]
        reservation = inbound(envelope("InventoryReserved", reserved()))
        logic.on_inventory_event(reservation)
        assert calls[2:] == ["UpdateItem", "TransactWriteItems"]
        logic.on_inventory_event(reservation)  # redelivered: its write fails, nothing else happens
        logic.on_order_event(order)  # and so does the order's
        assert calls[4:] == ["UpdateItem", "UpdateItem"]
    assert emitted(outbox) == ["PaymentInitiated", "PaymentAuthorised", "PaymentProcessed"]


def test_the_simulated_provider_captures_or_voids_an_authorisation_once_each_call_by_its_own_key(as_service):
    """As a provider would: a voided authorisation is not captured, a captured one not voided, nothing is
    captured beyond what was authorised; a call asked again with its key answers what it answered first."""
    from payment.provider import SimulatedProvider

    simulator = SimulatedProvider(fault_rate=0.0)
    with as_service("payment"):
        authorised = simulator.authorise(idempotency_key="auth_a", amount=500, currency="EUR", method="pm_card_visa")
        assert authorised.succeeded and authorised.reference.startswith("pi_")
        assert simulator.authorise(idempotency_key="auth_a", amount=500, currency="EUR",
                                   method="pm_card_visa") == authorised
        too_much = simulator.capture(idempotency_key="capture_a1", authorisation_reference=authorised.reference,
                                     amount=501)
        assert (too_much.succeeded, too_much.decline_code) == (False, "amount_exceeds_authorisation")
        captured = simulator.capture(idempotency_key="capture_a", authorisation_reference=authorised.reference,
                                     amount=500)
        assert captured.succeeded and simulator.capture(
            idempotency_key="capture_a", authorisation_reference=authorised.reference, amount=500) == captured
        late_void = simulator.void(idempotency_key="void_a", authorisation_reference=authorised.reference)
        assert (late_void.succeeded, late_void.decline_code) == (False, "authorisation_captured")

        other = simulator.authorise(idempotency_key="auth_b", amount=700, currency="EUR", method="pm_card_visa")
        assert simulator.void(idempotency_key="void_b", authorisation_reference=other.reference).succeeded
        late_capture = simulator.capture(idempotency_key="capture_b", authorisation_reference=other.reference,
                                         amount=700)
        assert (late_capture.succeeded, late_capture.decline_code) == (False, "authorisation_voided")
        declined = simulator.authorise(idempotency_key="auth_c", amount=900, currency="EUR",
                                       method="pm_card_insufficientFunds")
        assert (declined.succeeded, declined.decline_code) == (False, "insufficient_funds")
        never = simulator.capture(idempotency_key="capture_c", authorisation_reference=declined.reference,
                                  amount=900)
        assert (never.succeeded, never.decline_code) == (False, "authorisation_unknown")


# --- shipping and order --------------------------------------------------------------------------
def test_an_order_confirmed_before_it_was_created_still_gets_its_parcel(as_service, outbox):
    from shipping import logic, store

    confirmed = {"orderId": "o-1", "userId": "u-1", "paymentId": "pay_o-1",
                 "total": {"amount": 1000, "currency": "EUR"}}
    with as_service("shipping"):
        logic.on_order_event(inbound(envelope("OrderConfirmed", confirmed)))
        assert store.get_shipment("shp_o-1") is None
        logic.on_order_event(inbound(envelope("OrderCreated", created())))
        assert present(store.get_shipment("shp_o-1"))["status"] == "CREATED"
    assert emitted(outbox) == ["ShippingCreated"]


def test_a_delivery_reported_before_its_dispatch_ends_delivered_and_still_tells_the_customer(as_service, outbox):
    from order import aggregate, logic, store

    placed = aggregate.Change("Placed", {**created(), "correlationId": "corr-x", "deadline": "2999-01-01"})
    with as_service("order"):
        logic._apply(aggregate.Order(order_id="o-1"), [placed, aggregate.Change("Confirmed", {"paymentId": "p"})], [])
        assert store.load("o-1").status == "CONFIRMED"
        shipment = {"shipmentId": "shp_o-1", "orderId": "o-1", "userId": "u-1"}
        logic.on_shipping_event(inbound(envelope("ShippingDelivered", {**shipment,
                                                                      "deliveredAt": "2026-01-02T00:00:00Z"})))
        logic.on_shipping_event(inbound(envelope("ShippingDispatched", {**shipment, "carrier": "An Post",
                                                                       "trackingNumber": "T1"})))
        assert store.load("o-1").status == "DELIVERED"
    assert emitted(outbox) == ["OrderShipped"]


# --- notifications ---------------------------------------------------------------------------------
class CountingSender:
    def __init__(self):
        self.sent: list[str] = []

    def send(self, *, message_id, to, subject, body):
        self.sent.append(message_id)


@pytest.fixture
def sender():
    from notification import senders

    counting = CountingSender()
    senders.install(counting)
    yield counting
    senders.install(None)


def test_a_notification_is_recorded_before_it_is_sent_so_a_replay_sends_nothing(as_service, sender):
    from notification import logic

    customer_key(as_service)
    registered = inbound(envelope("UserRegistered", {"userId": "u-1", "email": "ada@example.com", "name": "Ada"}))
    confirmed = inbound(envelope("OrderConfirmed", {"orderId": "o-1", "userId": "u-1", "paymentId": "p",
                                                    "total": {"amount": 1, "currency": "EUR"}}))
    with as_service("notification"):
        logic.on_user_event(registered)
        for _ in range(3):
            logic.notify(confirmed)
    assert len(sender.sent) == 2  # welcome + order-confirmed, once each


def test_a_send_interrupted_after_the_hand_over_is_not_repeated(as_service, sender, outbox):
    from notification import logic, store

    class Crashing(CountingSender):
        def send(self, **kwargs):
            super().send(**kwargs)
            raise SystemExit("the function was stopped here")  # not an Exception: nothing is cleaned up

    from notification import senders

    with as_service("notification"):
        store.apply_contact("u-1", 1, {"email": "ada@example.com", "status": "ACTIVE"})
        confirmed = inbound(envelope("OrderConfirmed", {"orderId": "o-1", "userId": "u-1", "paymentId": "p",
                                                        "total": {"amount": 1, "currency": "EUR"}}))
        crashing = Crashing()
        senders.install(crashing)
        with pytest.raises(SystemExit):
            logic.notify(confirmed)
        senders.install(sender)
        logic.notify(confirmed)  # the redelivery
        [message] = _messages_to("u-1")
        assert message["status"] == "UNCONFIRMED"
    assert len(crashing.sent) == 1 and sender.sent == []
    assert [e.event_type for e in outbox][-1] == "NotificationFailed"
    assert outbox[-1].data["error"] == "delivery_unconfirmed"


def test_no_cart_reminder_to_a_deactivated_customer_whatever_the_order_of_events(as_service, sender):
    from notification import logic, store
    from shopstream import personal

    customer_key(as_service)
    with as_service("notification"):
        logic.on_user_event(inbound(envelope("UserDeactivated", {"userId": "u-1", "version": 2})))
        logic.on_user_event(inbound(envelope("UserRegistered", {"userId": "u-1", "email": "a@b.ie", "name": "A"})))
        logic.notify(inbound(envelope("CartAbandoned", {"cartId": "c-1", "userId": "u-1", "items": [],
                                                        "lastActivityAt": "2026-01-01T00:00:00Z"})))
        contact = store.get_contact("u-1")
        assert contact is not None
        # a v1 registration's address in clear is sealed on arrival; the name is not kept at all
        assert personal.is_sealed(contact["email"]) and "name" not in contact
        assert (contact["status"], personal.reveal(contact["email"], "email")) == ("DEACTIVATED", "a@b.ie")
        assert [m["status"] for m in _messages_to("u-1") if m["template"] == "cart-reminder"] == ["SUPPRESSED"]
    assert len(sender.sent) == 1  # the welcome, sent when the registration arrived


def test_a_refused_message_reports_a_class_not_the_providers_text(as_service, outbox):
    from notification import logic, senders, store

    class Refusing:
        def send(self, **kwargs):
            raise ValueError("Email address is not verified: ada@example.com")

    senders.install(Refusing())
    try:
        with as_service("notification"):
            store.apply_contact("u-1", 1, {"email": "ada@example.com"})
            logic.notify(inbound(envelope("OrderShipped", {"orderId": "o-1", "userId": "u-1", "shipmentId": "s",
                                                           "carrier": "An Post", "trackingNumber": "T"})))
    finally:
        senders.install(None)
    [failed] = outbox
    assert failed.event_type == "NotificationFailed" and "ada@example.com" not in failed.model_dump_json()
    assert failed.data["error"] == "rejected:ValueError"


def _sealed_registration(as_service, user_id: str = "u-1", email: str = "ada@example.com") -> EventEnvelope:
    """A v2 registration, its address sealed with the customer's (new) key."""
    from shopstream import personal

    customer_key(as_service, user_id)
    with as_service("user"):
        sealed, name = personal.seal(user_id, "email", email).to_wire(), personal.seal(user_id, "name", "Ada").to_wire()
    return event_from_command(event_type="UserRegistered", service="user", correlation_id="corr-r",
                              data={"userId": user_id, "email": sealed, "name": name}, event_version="v2",
                              user_id=user_id)


def _records(uow, status: str) -> bool:
    """``uow`` records a message as ``status``."""
    return uow is not None and any(action.get("Put", {}).get("Item", {}).get("status", {}).get("S") == status
                                   for action in uow.actions)


def test_a_customer_erased_between_the_read_and_the_record_gets_nothing(as_service, sender):
    """The record's transaction checks the key that opened the address is still there."""
    from notification import logic
    from shopstream import personal, transaction

    registered = _sealed_registration(as_service)
    confirmed = inbound(envelope("OrderConfirmed", {"orderId": "o-1", "userId": "u-1", "paymentId": "p",
                                                    "total": {"amount": 1, "currency": "EUR"}}))
    with as_service("notification"):
        logic.on_user_event(inbound(registered))

    def erase_now(uow):
        if _records(uow, "SENDING"):
            transaction.set_commit_hooks()
            with as_service("user"):
                erasure = transaction.UnitOfWork()
                personal.destroy_key(erasure, "u-1")
                erasure.commit()

    transaction.set_commit_hooks(before=erase_now)
    try:
        with as_service("notification"):
            logic.notify(confirmed)
            statuses = {m["template"]: (m["status"], m.get("error")) for m in _messages_to("u-1")}
    finally:
        transaction.set_commit_hooks()
    assert len(sender.sent) == 1  # the welcome, before the erasure
    assert statuses == {"welcome": ("SENT", None), "order-confirmed": ("SUPPRESSED", "erased")}


def test_a_contact_changed_by_another_event_meanwhile_is_merged_again_and_noticed_once(as_service, sender):
    from notification import logic, store
    from shopstream import personal, transaction

    registered = _sealed_registration(as_service)
    with as_service("user"):
        newer = personal.seal("u-1", "email", "new@example.com").to_wire()
    updated = event_from_command(event_type="UserUpdated", service="user", correlation_id="corr-u",
                                 data={"userId": "u-1", "email": newer, "version": 3}, event_version="v2",
                                 user_id="u-1")

    def update_now(uow):  # the newer update lands between the registration's read and its write
        if _records(uow, "SENDING"):
            transaction.set_commit_hooks()
            logic.on_user_event(inbound(updated))

    with as_service("notification"):
        transaction.set_commit_hooks(before=update_now)
        try:
            logic.on_user_event(inbound(registered))
        finally:
            transaction.set_commit_hooks()
        contact = store.get_contact("u-1")
        assert contact is not None
        assert (contact["version"], contact["status"]) == (3, "ACTIVE")  # the registration's status kept
        assert personal.reveal(contact["email"], "email") == "new@example.com"
        assert sorted(m["template"] for m in _messages_to("u-1")) == ["profile-updated", "welcome"]
    assert len(sender.sent) == 2


def test_a_sent_notice_takes_one_read_and_two_writes(as_service, sender, monkeypatch):
    """Contact and key in one batch read; the contact's change rides in the record's transaction."""
    import boto3

    from notification import logic
    from shopstream import aws

    registered = _sealed_registration(as_service)
    confirmed = inbound(envelope("OrderConfirmed", {"orderId": "o-1", "userId": "u-1", "paymentId": "p",
                                                    "total": {"amount": 1, "currency": "EUR"}}))
    calls: list[str] = []
    client = boto3.client("dynamodb")

    class Counting:
        exceptions = client.exceptions

        def __getattr__(self, name):
            calls.append(name)
            return getattr(client, name)

    real_client = aws.client
    monkeypatch.setattr(aws, "client", lambda name: Counting() if name == "dynamodb" else real_client(name))
    with as_service("notification"):
        logic.on_user_event(inbound(registered))
        assert calls == ["batch_get_item", "transact_write_items", "transact_write_items"]
        calls.clear()
        logic.notify(confirmed)
        assert calls == ["batch_get_item", "transact_write_items", "transact_write_items"]
    assert len(sender.sent) == 2


# --- erasure (issue 15) ---------------------------------------------------------------------------------
def _registered_then_erased(as_service, user_id: str = "u-1") -> tuple[EventEnvelope, EventEnvelope]:
    """What the user service emits for a customer who registers and is erased: the registration (sealed with
    the key that erasure then deletes) and the erasure."""
    from shopstream import personal
    from shopstream.transaction import UnitOfWork

    customer_key(as_service, user_id)
    with as_service("user"):
        email, name = personal.seal(user_id, "email", "ada@example.com"), personal.seal(user_id, "name", "Ada")
        uow = UnitOfWork()
        personal.destroy_key(uow, user_id)
        uow.commit()
    registered = event_from_command(event_type="UserRegistered", service="user", correlation_id="corr-r",
                                    data={"userId": user_id, "email": email.to_wire(), "name": name.to_wire()},
                                    event_version="v2", user_id=user_id)
    erased = envelope("UserErased", {"userId": user_id, "version": 2})
    return registered, erased


@pytest.mark.parametrize("erasure_first", [True, False])
def test_an_erasure_leaves_a_tombstone_whatever_arrives_before_or_after_it(as_service, sender, erasure_first):
    from notification import logic as notices
    from notification import store as contacts
    from order import logic as orders
    from order import store as order_store
    from shopstream import replica

    registered, erased = _registered_then_erased(as_service)
    updated = envelope("UserUpdated", {"userId": "u-1", "email": "late@example.com", "version": 3})
    arrivals = [erased, registered, updated, erased] if erasure_first else [registered, updated, erased, registered]
    for event in arrivals:  # duplicates and redeliveries included
        with as_service("notification"):
            notices.on_user_event(inbound(event))
        with as_service("order"):
            orders.on_user_event(inbound(event))
    with as_service("notification"):
        contact = contacts.get_contact("u-1")
        assert contact is not None
        assert replica.erased(contact) and set(contact) == {"pk", "sk", "userId", "erased", "erasedAt", "rev"}
        statuses = {m["template"]: m["status"] for m in _messages_to("u-1")}
    with as_service("order"):
        user = order_store.get_replica("USER", "u-1")
        assert user is not None
        assert replica.erased(user) and "name" not in user and "status" not in user
    # the welcome and the profile notice were never sent: the address could not be opened, or was not kept
    assert sender.sent == [] and set(statuses.values()) == {"SUPPRESSED"}


def test_an_erased_customers_carts_are_deleted_and_no_cart_is_created_for_them_afterwards(as_service):
    from cart import logic, store
    from shopstream.transaction import ConditionFailed, UnitOfWork

    def create(cart_id: str, user_id: str) -> None:
        uow = UnitOfWork()
        store.create(uow, {"cartId": cart_id, "userId": user_id, "items": [], "status": "OPEN", "version": 1,
                           "updatedAt": "2026-11-29T10:00:00.000+00:00"})
        uow.commit()

    with as_service("cart"):
        for cart_id, user_id in (("c-1", "u-1"), ("c-2", "u-1"), ("c-3", "u-2")):
            create(cart_id, user_id)
        checked_out = UnitOfWork()
        store.close(checked_out, present(store.get("c-2")), "CHECKED_OUT", "2026-11-29T10:01:00.000+00:00")
        checked_out.commit()
        assert present(store.get("c-2"))["status"] == "CHECKED_OUT"
        erased = inbound(envelope("UserErased", {"userId": "u-1", "version": 2}))
        for _ in range(2):  # a redelivery deletes nothing more
            logic.on_user_event(erased)
        assert store.get("c-1") is None and store.get("c-2") is None and store.get_many(store.carts_of("u-1")) == {}
        assert store.get("c-3") is not None
        with pytest.raises(ConditionFailed):  # a cart created after the erasure (a token still valid)
            create("c-4", "u-1")
        assert store.get("c-4") is None and store.erased("u-1")


def test_a_cart_changed_while_its_checkout_closes_it_is_closed_all_the_same(as_service, outbox):
    """The checkout's conditional close loses a race with a change of the cart's lines: it reads the cart
    again and closes it, instead of acknowledging the order with the cart left OPEN (reusable, reminded of)."""
    from cart import logic, store
    from shopstream import transaction
    from shopstream.transaction import UnitOfWork

    with as_service("cart"):
        uow = UnitOfWork()
        store.create(uow, {"cartId": "c-1", "userId": "u-1", "items": [{"productId": "p-1", "quantity": 1}],
                           "status": "OPEN", "version": 1, "updatedAt": "2026-11-29T10:00:00.000+00:00"})
        uow.commit()
        raced: list[bool] = []

        def change_the_lines_first(uow) -> None:
            if raced or not any(e.event_type == "CartUpdated" for e in uow.events):
                return
            raced.append(True)
            transaction.set_commit_hooks()
            change = UnitOfWork()
            store.replace_items(change, present(store.get("c-1")), [{"productId": "p-2", "quantity": 3}],
                                "2026-11-29T10:00:01.000+00:00")
            change.commit()

        transaction.set_commit_hooks(before=change_the_lines_first)
        try:
            order = created()
            logic.on_order_created(inbound(envelope("OrderCreated", {**order, "cartId": "c-1"})))
        finally:
            transaction.set_commit_hooks()
        assert raced, "the race was not run"
        cart = store.get("c-1")
        assert cart is not None
        assert cart["status"] == "CHECKED_OUT" and cart["version"] == 3
        assert [e.data["status"] for e in outbox if e.event_type == "CartUpdated"] == ["CHECKED_OUT"]
        assert store.open_carts_with("p-2") == []
