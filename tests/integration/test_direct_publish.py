"""The order saga with direct publish on (shopstream.direct): the critical path's events leave with their commits,
the relays publish the rest, and every event reaches its topic once."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws

from local import provision
from local.bus import InProcessBus
from local.shop import Shop, scan
from shopstream import catalog, direct
from shopstream.publisher import InMemoryPublisher, PublishError, set_publisher
from tests.integration.conftest import check_invariants


class RefusingBroker(InMemoryPublisher):
    """The broker refuses every direct publish (the relays publish through the bus's own publisher)."""

    def deliver(self, records, timeout):
        raise PublishError(dict.fromkeys((r.event_id for r in records), "Broker: Not enough in-sync replicas"))


def _shop(broker: InMemoryPublisher):
    import boto3

    with mock_aws():
        bus = InProcessBus(queue_urls=provision.create_aws_resources(boto3.client, "eu-west-1"), direct_publish=True)
        set_publisher(broker)
        direct.set_clock(bus.now)
        try:
            yield Shop(bus)
        finally:
            direct.set_clock()
            set_publisher(None)


@pytest.fixture
def shop():
    yield from _shop(InMemoryPublisher())


@pytest.fixture
def refused_shop():
    yield from _shop(RefusingBroker())


def _published_ids(bus: InProcessBus) -> list[str]:
    return [json.loads(r.value)["eventId"] for partitions in bus.log.values() for records in partitions.values()
            for r in records]


def _order_paid(shop: Shop) -> str:
    shop.register("u-1")
    mug = shop.product("MUG", 1250, stock=10)
    shop.bus.pump()
    return shop.order("u-1", {mug: 2})


def test_the_critical_paths_events_leave_with_their_commits_and_each_reaches_its_topic_once(shop):
    order_id = _order_paid(shop)
    # OrderCreated is on its topic as the request answers, before any relay has read the order table's stream
    assert [e["eventType"] for e in shop.bus.events("order-events") if e["data"]["orderId"] == order_id] == [
        "OrderCreated"]
    shop.bus.pump()
    assert shop.get_order(order_id)["status"] == "CONFIRMED"
    assert check_invariants(shop.bus) == {"CONFIRMED": [None]}
    published = _published_ids(shop.bus)
    assert len(published) == len(set(published))  # no duplicate on the routine path
    # The direct publishers deleted their outbox items once published; the relays' items stay (TTL).
    left = {s.name: [i for i in scan(s.name) if i["pk"].startswith("OUTBOX#")] for s in catalog.SERVICES}
    assert not [i for items in left.values() for i in items if "direct" in i]
    assert left["order"] and all(i["eventType"] != "OrderCreated" for i in left["order"])


def test_when_the_broker_refuses_the_direct_publishes_the_relays_publish_each_event_once(refused_shop):
    shop = refused_shop
    order_id = _order_paid(shop)
    assert not [e for e in shop.bus.events("order-events") if e["data"].get("orderId") == order_id]
    shop.bus.pump()  # the relays hold each refused item back through its grace, then publish it
    assert shop.get_order(order_id)["status"] == "CONFIRMED"
    assert check_invariants(shop.bus) == {"CONFIRMED": [None]}
    published = _published_ids(shop.bus)
    assert len(published) == len(set(published))
    assert [i for i in scan("order") if i["pk"].startswith("OUTBOX#") and "direct" in i]  # the fallback's
