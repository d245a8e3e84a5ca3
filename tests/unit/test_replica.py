"""Replicas of another service's entities: the same result in every order of arrival, one write per
event in the usual order, and a lost race decided from what the failed write hands back."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from local import naming
from shopstream.config import override_settings
from tests.support import present

KEY = {"pk": "CONTACT#u-1", "sk": "CONTACT", "userId": "u-1"}
Event = tuple[int, dict[str, str | None]]  # (version, fields): a None field is one the event does not carry
EVENTS: list[Event] = [  # a registration, an address change, a deactivation
    (1, {"email": "ada@example.com", "name": "Ada", "status": "ACTIVE"}),
    (2, {"email": "ada@lovelace.ie", "name": None}),
    (3, {"status": "DEACTIVATED"}),
]
FINAL = {"email": "ada@lovelace.ie", "name": "Ada", "status": "DEACTIVATED", "version": 3}


@pytest.fixture
def calls(aws):
    """DynamoDB operations made, by name."""
    import boto3

    counted: Counter[str] = Counter()
    client = boto3.client("dynamodb")
    client.meta.events.register("before-call.dynamodb", lambda model, **_: counted.update([model.name]))
    from shopstream import aws as shop_aws

    shop_aws.reset_clients()
    original = shop_aws.client
    shop_aws.client = lambda name: client if name == "dynamodb" else original(name)  # type: ignore[assignment]
    try:
        with override_settings(naming.function_settings("notification")):
            yield counted
    finally:
        shop_aws.client = original


def _visible(item: dict | None) -> dict:
    return {k: (item or {}).get(k) for k in FINAL}


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(EVENTS)))))
def test_every_order_of_arrival_and_every_replay_ends_in_the_same_replica(calls, order):
    from shopstream import replica

    for index in [*order, *order]:  # then all of them again: a replay
        version, fields = EVENTS[index]
        after = replica.apply(KEY, version, fields)
    assert _visible(after) == FINAL
    from shopstream import dynamo

    assert _visible(dynamo.get(KEY["pk"], KEY["sk"])) == FINAL
    assert set(calls) == {"UpdateItem", "GetItem"}  # never a read before a write (GetItem: the check above)


def test_events_in_order_cost_one_write_each_and_a_replay_writes_nothing(calls):
    from shopstream import replica

    for version, fields in EVENTS:
        replica.apply(KEY, version, fields)
    assert calls == Counter({"UpdateItem": 3})
    revision = present(replica.apply(KEY, *EVENTS[0]))["rev"]
    assert calls == Counter({"UpdateItem": 4}) and revision == 3  # the failed write was the only call


def test_a_late_event_is_merged_from_the_item_its_failed_write_handed_back(calls):
    from shopstream import replica

    replica.apply(KEY, *EVENTS[2])
    replica.apply(KEY, *EVENTS[1])
    after = replica.apply(KEY, *EVENTS[0])  # the name is only in the registration
    assert after is not None and after["name"] == "Ada" and after["email"] == "ada@lovelace.ie"
    assert calls == Counter({"UpdateItem": 5})  # 1 + 2 + 2: no GetItem


def test_a_write_racing_the_merge_is_not_lost(calls):
    from shopstream import replica, transaction

    replica.apply(KEY, *EVENTS[2])
    raced: list[bool] = []

    def another_writer_first(uow):
        if not raced:  # just before this handler's second write, another one lands
            raced.append(True)
            transaction.set_commit_hooks()
            replica.apply(KEY, 4, {"name": "Augusta Ada"})
            transaction.set_commit_hooks(before=another_writer_first)

    transaction.set_commit_hooks(before=lambda uow: transaction.set_commit_hooks(before=another_writer_first))
    try:
        after = replica.apply(KEY, *EVENTS[1])
    finally:
        transaction.set_commit_hooks()
    assert after is not None
    assert (after["email"], after["name"], after["status"], after["version"]) == (
        "ada@lovelace.ie", "Augusta Ada", "DEACTIVATED", 4)


@pytest.mark.parametrize("before", [0, 1, 3])
def test_a_tombstone_takes_nothing_in_one_write_and_answers_itself(calls, before):
    """After an erasure (issue 15), any event, however new, leaves the tombstone as it is: its first write
    fails on the tombstone and hands it back, so nothing is read and nothing else is written."""
    from shopstream import replica

    for version, fields in EVENTS[:before]:
        replica.apply(KEY, version, fields)
    assert replica.erase(KEY, "2026-11-29T12:00:00.000+00:00") is True
    assert replica.erase(KEY, "2026-11-29T12:00:01.000+00:00") is False  # a redelivered erasure
    calls.clear()
    newer: Event = (9, {"email": "ada@new.example", "name": "Ada", "status": "ACTIVE"})
    for version, fields in [*EVENTS, newer]:
        after = replica.apply(KEY, version, fields)
        assert after is not None
        assert replica.erased(after) and set(after) == {"pk", "sk", "userId", "erased", "erasedAt", "rev"}, after
    assert calls == Counter({"UpdateItem": len(EVENTS) + 1})
