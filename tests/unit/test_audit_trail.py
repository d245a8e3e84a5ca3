"""The audit trail: each event written once by one conditional PutItem (not a one-item transaction), within
reach of the simulation's commit hooks, expiring its retention after its event time."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from local import naming
from shopstream.config import override_settings
from shopstream.envelope import EventEnvelope
from shopstream.inbound import InboundEvent

ENVELOPE = EventEnvelope(event_type="OrderCreated", source="order-service", correlation_id="corr-1",
                         data={"orderId": "o-1"}).to_wire()
TTL = 1_800_000_000


@pytest.fixture(autouse=True)
def fresh_settings():
    """The audit service's settings are read once per process: each test reads its own environment."""
    from shopstream.config import reset_settings

    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def calls(aws):
    """DynamoDB operations made, by name, as the audit service."""
    counted: Counter[str] = Counter()
    aws["dynamodb"].meta.events.register("before-call.dynamodb", lambda model, **_: counted.update([model.name]))
    from shopstream import aws as shop_aws

    shop_aws.reset_clients()
    original = shop_aws.client
    shop_aws.client = lambda name: aws["dynamodb"] if name == "dynamodb" else original(name)  # type: ignore[assignment]
    try:
        with override_settings(naming.function_settings("audit")):
            yield counted
    finally:
        shop_aws.client = original


def _trail(aws) -> list[dict]:
    items = aws["dynamodb"].scan(TableName=naming.table("audit"))["Items"]
    return [i for i in items if i["pk"]["S"].startswith("TRAIL#")]


def test_an_event_is_recorded_once_by_one_conditional_put(aws, calls):
    from audit import store

    assert store.record(ENVELOPE, "order-events", 3, 41, TTL) is True
    assert store.record({**ENVELOPE, "data": {"orderId": "changed"}}, "order-events", 5, 99, TTL) is False
    assert calls == {"PutItem": 2}  # no transaction, no read
    (item,) = _trail(aws)
    assert item["sk"]["S"] == f"{ENVELOPE['timestamp']}#{ENVELOPE['eventId']}"
    assert (item["partition"]["N"], item["offset"]["N"]) == ("3", "41")  # the first write stands


def test_the_commit_hooks_reach_the_trail_write(aws, calls):
    """A fault before the write leaves nothing; the hook after it sees the one Put it made."""
    from audit import store
    from shopstream import transaction

    class Injected(Exception):
        pass

    def fail(uow):
        raise Injected

    seen: list = []
    transaction.set_commit_hooks(before=fail)
    try:
        with pytest.raises(Injected):
            store.record(ENVELOPE, "order-events", 0, 1, TTL)
        assert _trail(aws) == []
        transaction.set_commit_hooks(after=seen.append)
        store.record(ENVELOPE, "order-events", 0, 1, TTL)
    finally:
        transaction.set_commit_hooks()
    (uow,) = seen
    assert [list(action) for action in uow.actions] == [["Put"]] and uow.events == []
    assert uow.actions[0]["Put"]["ConditionExpression"] == "attribute_not_exists(pk)"
    assert len(_trail(aws)) == 1


def _event_at(at: datetime, correlation_id: str = "corr-1") -> InboundEvent:
    envelope = EventEnvelope(event_type="OrderCreated", source="order-service", correlation_id=correlation_id,
                             timestamp=at, data={"orderId": "o-1"})
    return InboundEvent(envelope, envelope.data, "order-events", 0, 7)


@pytest.mark.parametrize("days", [7, 30])
def test_a_trail_item_expires_its_retention_after_its_event_time(aws, calls, monkeypatch, days):
    from audit import logic

    monkeypatch.setenv("SHOPSTREAM_TRAIL_RETENTION_DAYS", str(days))
    at = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
    logic.on_any_event(_event_at(at))
    (item,) = _trail(aws)
    assert int(item["ttl"]["N"]) == int(at.timestamp()) + days * 86_400


def test_the_trail_answers_within_its_retention_and_points_older_questions_to_the_archive(aws, calls, monkeypatch):
    """Events older than the retention are left out even while DynamoDB has not deleted them yet (moto never
    does), and a cursor issued before the retention moved past it starts again at the retention."""
    from audit import analytics, logic
    from shopstream.request import Caller, NotFound

    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(analytics, "now", lambda: now)
    for days_ago in (9, 8, 6, 1):
        logic.on_any_event(_event_at(now - timedelta(days=days_ago)))
    logic.on_any_event(_event_at(now - timedelta(days=30), correlation_id="corr-old"))
    admin = Caller(user_id="admin-1", groups=frozenset({"admins"}), correlation_id="c-1")

    events, cursor = logic.trail(admin, "corr-1", 1, None)
    assert [e["timestamp"][:10] for e in events] == ["2026-11-29"] and cursor
    monkeypatch.setattr(analytics, "now", lambda: now + timedelta(days=2))  # the first page's event expired
    events, _ = logic.trail(admin, "corr-1", 10, cursor)
    assert [e["timestamp"][:10] for e in events] == ["2026-12-04"]
    with pytest.raises(NotFound, match="in the last 7 days .*audit archive"):
        logic.trail(admin, "corr-old", 10, None)


def test_a_batch_delivered_again_with_more_of_its_records_archives_the_ones_it_lacked(aws):
    """A whole batch fails after its trail archived what it had applied (dev's mappings retry a batch whole); the
    batch comes again with the same first and last offsets and every record: the record missing the first time
    is archived now, and the same records a third time add no object (the archive is locked)."""
    import boto3

    from audit import store
    from local import provision

    s3 = boto3.client("s3")
    provision.create_buckets(s3, s3.meta.region_name)
    envelopes = {offset: EventEnvelope(event_type="OrderCreated", source="order-service", correlation_id=f"c-{offset}",
                                       data={"orderId": f"o-{offset}"}).to_wire() for offset in (10, 11, 12)}
    first = store.archive(naming.AUDIT_ARCHIVE_BUCKET, "order-events", 3, [(10, envelopes[10]), (12, envelopes[12])])
    whole = [(offset, envelopes[offset]) for offset in (10, 11, 12)]
    again = store.archive(naming.AUDIT_ARCHIVE_BUCKET, "order-events", 3, whole)
    assert again != first
    assert store.archive(naming.AUDIT_ARCHIVE_BUCKET, "order-events", 3, whole) == again
    assert set(store.archived(naming.AUDIT_ARCHIVE_BUCKET)) == {e["eventId"] for e in envelopes.values()}
    listed = s3.list_object_versions(Bucket=naming.AUDIT_ARCHIVE_BUCKET)["Versions"]
    assert sorted(v["Key"] for v in listed) == sorted([first, again])
