"""Mappings that do not take a partial batch response (Kafka mappings in on-demand mode, dev's): the bus as
Lambda behaves there, and the consumers as the stacks configure them (docs/decisions.md, 2026-12-05)."""

from __future__ import annotations

import pytest

from local.shop import Shop
from shopstream import catalog, transaction
from shopstream.config import get_settings
from tests.integration.conftest import check_invariants, dlq


@pytest.mark.parametrize(("partial", "resumes_at"), [(True, 1), (False, 3)], ids=["provisioned", "on-demand"])
def test_a_response_naming_a_failed_record_is_honoured_only_where_the_mapping_takes_one(bus, monkeypatch, partial,
                                                                                       resumes_at):
    """On-demand, Lambda commits every offset of a batch the function returns from: the failed record is passed."""
    bus.partial_batch_response = partial
    spec = catalog.service("inventory")
    handler = spec.handler("order-reservations")
    for _ in range(3):
        bus.inject(handler.topic, "k", b"{}")  # what the records hold does not matter to the stand-in below
    partition = next(p for p, records in bus.log[handler.topic].items() if records)

    def names_the_second_record_failed(event, context):
        return {"batchItemFailures": [{"itemIdentifier": {"partition": f"{handler.topic}-{partition}", "offset": 1}}]}

    monkeypatch.setattr(bus.consumer_modules["inventory"], handler.entry, names_the_second_record_failed)
    bus.deliver_step(spec, handler, partition)
    assert bus.cursors[("inventory", handler.name, partition)].next_offset == resumes_at


def test_on_demand_a_transient_failure_fails_the_batch_and_its_redelivery_loses_nothing(bus):
    """The consumer fails the invocation (whole-batch mode), so the batch comes again; nothing is given up,
    whatever the retries. Without the mode the record that failed would be passed: the order never confirmed."""
    bus.partial_batch_response, bus.give_up_after = False, 1
    shop = Shop(bus)
    shop.register("u-1")
    mug = shop.product("MUG", 1250, stock=5)
    bus.pump()
    order_id = shop.order("u-1", {mug: 1})
    # A record ahead of OrderCreated in its partition, which every handler of the topic skips: the failure below
    # is then one record of a batch of two (a batch whose every record fails is a function error in any mode).
    bus.inject("order-events", order_id, b"{}", headers=(("eventType", b"UserRegistered"),))
    failures = {"left": 2}

    def throttled(_uow) -> None:
        if get_settings().handler == "order-reservations" and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("table throttled")

    transaction.set_commit_hooks(before=throttled)
    try:
        bus.pump()
    finally:
        transaction.set_commit_hooks()
    assert failures["left"] == 0 and bus.given_up == []
    assert shop.get_order(order_id)["status"] == "CONFIRMED"
    assert dlq(bus, "inventory", "order-reservations") == []
    assert check_invariants(bus) == {"CONFIRMED": [None]}
