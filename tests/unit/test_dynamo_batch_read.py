"""BatchGetItem's unprocessed keys: asked again after a capped, jittered exponential backoff, a bounded
number of times, then a transient error (never a partial answer). A stubbed client plays DynamoDB."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from shopstream import aws, dynamo

TABLE = "shop-test"


def _key(n: int) -> dict:
    return {"pk": {"S": f"P#{n}"}, "sk": {"S": "X"}}


def _item(n: int) -> dict:
    return {**_key(n), "n": {"N": str(n)}}


def _request(*numbers: int) -> dict:
    return {"RequestItems": {TABLE: {"Keys": [_key(n) for n in numbers], "ConsistentRead": True}}}


def _answer(found: list[int], unprocessed: list[int]) -> dict:
    response: dict = {"Responses": {TABLE: [_item(n) for n in found]}}
    if unprocessed:
        response["UnprocessedKeys"] = {TABLE: {"Keys": [_key(n) for n in unprocessed], "ConsistentRead": True}}
    return response


@pytest.fixture
def stubbed(monkeypatch):
    """The process's DynamoDB client under a Stubber; every wait recorded instead of slept, each at its
    ceiling (the jitter's upper bound), so the sequence of ceilings is what the test sees."""
    client = aws.client("dynamodb")
    waits: list[float] = []
    monkeypatch.setattr(dynamo, "_sleep", waits.append)
    monkeypatch.setattr(dynamo.random, "uniform", lambda low, high: high)
    with Stubber(client) as stubber:
        yield stubber, waits
        stubber.assert_no_pending_responses()


def test_unprocessed_keys_are_asked_again_after_growing_waits_until_the_read_is_complete(stubbed):
    stubber, waits = stubbed
    stubber.add_response("batch_get_item", _answer([1], [2, 3, 4]), _request(1, 2, 3, 4))
    stubber.add_response("batch_get_item", _answer([2], [3, 4]), _request(2, 3, 4))
    stubber.add_response("batch_get_item", _answer([], [3, 4]), _request(3, 4))
    stubber.add_response("batch_get_item", _answer([3, 4], []), _request(3, 4))
    found = dynamo.batch_read({TABLE: [{"pk": f"P#{n}", "sk": "X"} for n in (1, 2, 3, 4)]})
    assert sorted(item["n"] for item in found[TABLE]) == [1, 2, 3, 4]
    assert waits == [0.05, 0.1, 0.2]  # one wait before each retry, doubling


def test_a_read_still_incomplete_after_every_attempt_raises_a_transient_error(stubbed):
    stubber, waits = stubbed
    stubber.add_response("batch_get_item", _answer([1], [2]), _request(1, 2))
    for _ in range(dynamo.BATCH_READ_ATTEMPTS - 1):
        stubber.add_response("batch_get_item", _answer([], [2]), _request(2))
    with pytest.raises(dynamo.Unprocessed, match="1 keys unread after 7 attempts") as raised:
        dynamo.batch_read({TABLE: [{"pk": "P#1", "sk": "X"}, {"pk": "P#2", "sk": "X"}]})
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]  # capped at a second
    from shopstream.consumer import permanent_failure

    assert permanent_failure(raised.value) is None  # transient: the record is retried, not dead-lettered


def test_the_jitter_stays_under_the_ceiling():
    for retry in range(1, 10):
        ceiling = min(dynamo.BATCH_READ_MAX_WAIT_SECONDS, dynamo.BATCH_READ_FIRST_WAIT_SECONDS * 2 ** (retry - 1))
        assert all(0 <= dynamo.backoff_seconds(retry) <= ceiling for _ in range(50))
