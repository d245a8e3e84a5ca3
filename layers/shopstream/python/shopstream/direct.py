"""Publishing a transaction's events to Kafka right after its commit, the outbox relay as the fallback.

The outbox (shopstream.outbox) commits state and events together and its relay publishes them: a DynamoDB stream
hop (~150 ms at p50, ~400 ms at p99) on each step of the order's critical path. Where ``direct_publish`` is set
(the critical path's committers, catalog.DIRECT_PUBLISHERS, where cdk.json's ``directPublish`` is on), a unit of
work also publishes its own events, once DynamoDB has acknowledged the commit and never before:

1. ``mark`` stamps each outbox item of the transaction with ``direct``: the time (epoch milliseconds) until which
   its function may still be publishing it, the commit's start plus GRACE_SECONDS.
2. After the commit, ``publish_committed`` delivers the events with a short timeout
   (``direct_publish_timeout_seconds``) and deletes the outbox items of those the broker acknowledged. Every
   failure is swallowed: the items stay, and the relay publishes them.
3. The relay (relay.OutboxRelay, ``plan``) publishes plain items at once. A ``direct`` item whose delete is in
   the same batch (the stream's REMOVE of its key) was published: it is skipped without a read. Any other is read
   back, strongly consistent (``still_present``): gone, it was published; still there after its ``direct`` time
   (waited for if need be), it was not (the function crashed, the broker refused, the delete was lost) and the
   relay publishes it.

No event is lost: an item is deleted only after the broker acknowledged its record, and the relay publishes every
item it finds. A duplicate stays possible (published, then the delete was lost or came after the grace): consumers
drop it by eventId, as they drop the relay's own retries. Costs per directly published event: the delete (a write
unit per KB of the item, which then stops taking storage for the outbox's 15 days) and, for the deletes that miss
their insert's relay batch, a strongly consistent read (docs/decisions.md, 2026-12-05).

Imported only where direct publish is on (tests/infra/code_calls.py gates what it reaches on
``SHOPSTREAM_DIRECT_PUBLISH``: a function reaches the brokers through it only with that setting).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from shopstream import aws, dynamo, tracing
from shopstream.config import get_settings
from shopstream.observability import logger
from shopstream.outbox import OUTBOX_PREFIX, outbox_record, publish_attributes
from shopstream.publisher import PublishError, get_publisher
from shopstream.wire import OutgoingRecord

DIRECT = "direct"  # the outbox item's attribute: epoch ms until which its committing function may still publish it
# The function's publish waits at most direct_publish_timeout_seconds (0.25 s) and its delete takes a DynamoDB call
# (6 ms p50, 25 ms p99: tools/capacity.py): after half a second an item still present was not published. A slower
# function costs a duplicate, never an event. Also the longest the relay ever waits for an item.
GRACE_SECONDS = 0.5
BATCH_WRITE_MAX = 25  # BatchWriteItem takes at most 25 requests
DELETE_ATTEMPTS = 3  # unprocessed deletes asked again (with backoff) before the item is left to the relay

# What the relays of this process did with direct items (the simulation reports it): "published by their function"
# (their delete was in the batch), "read back", "relayed" (still there once read back), "held back".
relayed: Counter[str] = Counter()
_clock: Callable[[], float] = time.time
_sleep: Callable[[float], None] = time.sleep
# Fault injection (the seeded simulation; never set in production): called at "publish" (before the records are
# produced), "delete" (the broker acknowledged, before the outbox items are deleted) and "done" (always, last).
_fault_hook: Callable[[str], None] | None = None


def now() -> float:
    """Seconds since the epoch, by the clock both sides of the grace read (the simulation's logical clock there)."""
    return _clock()


def set_clock(clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None) -> None:
    """Replace the clock (and the relay's wait); None restores the wall clock."""
    global _clock, _sleep
    _clock, _sleep = clock or time.time, sleep or time.sleep


def set_fault_hook(hook: Callable[[str], None] | None) -> None:
    global _fault_hook
    _fault_hook = hook


def _fault(stage: str) -> None:
    if _fault_hook is not None:
        _fault_hook(stage)


# --- the committing function ----------------------------------------------------------------------------------
def mark(actions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stamp every outbox item a transaction puts with ``direct``; those items (DynamoDB JSON), to publish once the
    transaction is committed. Stamped once: a retry of the same request (same token) must carry the same items."""
    until = {"N": str(int((now() + GRACE_SECONDS) * 1000))}
    items = []
    for action in actions:
        item = action.get("Put", {}).get("Item")
        if item is not None and item.get("pk", {}).get("S", "").startswith(OUTBOX_PREFIX):
            item[DIRECT] = until
            items.append(item)
    return items


def publish_committed(table_name: str, items: list[dict[str, Any]]) -> int:
    """Publish the events of outbox ``items`` a transaction has just committed, then delete the items of those the
    broker acknowledged; how many that was (0: all left to the relay). Raises no Exception: the relay is the
    fallback for whatever did not go through."""
    if not items:
        return 0
    acknowledged: list[dict[str, Any]] = []
    try:
        _fault("publish")
        acknowledged = _deliver(items)
        if acknowledged:
            _fault("delete")
            _delete(table_name, acknowledged)
    except Exception as exc:  # a crash (BaseException) goes through: the function stopped here
        logger().warning("events left to the outbox relay", extra={"error": f"{type(exc).__name__}: {exc}"[:300],
                                                                   "events": len(items)})
    finally:
        _fault("done")
    return len(acknowledged)


def _deliver(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Produce the items' records (as the relay would: the same record, a PRODUCER span child of the context the
    event was committed in); the items whose record the broker acknowledged in time."""
    records: list[OutgoingRecord] = []
    spans: dict[str, Any] = {}
    for item in items:
        record = outbox_record(item)
        assert record is not None  # mark() took outbox items only
        if tracing.enabled():
            span = tracing.start(f"publish {record.topic}", kind="producer",
                                 parent=item.get(tracing.TRACEPARENT, {}).get("S"),
                                 attributes={**publish_attributes(record), "shopstream.publish": "direct"})
            record = replace(record, headers=tracing.headers_with(record.headers,
                                                                  traceparent=tracing.traceparent(span) or ""))
            spans[record.event_id] = span
        records.append(record)
    failed: dict[str, str] = {}
    try:
        get_publisher().deliver(records, get_settings().direct_publish_timeout_seconds)
    except PublishError as exc:
        failed = exc.failed
    except Exception as exc:  # no producer (configuration, the broker unreachable): nothing was acknowledged
        failed = {r.event_id: f"{type(exc).__name__}: {exc}"[:200] for r in records}
    for event_id, span in spans.items():
        tracing.end(span, error=failed.get(event_id))
    if failed:
        logger().warning("events not acknowledged: left to the outbox relay", extra={"failed": failed})
    return [item for item, record in zip(items, records, strict=True) if record.event_id not in failed]


def _delete(table_name: str, items: list[dict[str, Any]]) -> None:
    """BatchWriteItem deletes of the items; what stays unprocessed is left (the relay publishes it again)."""
    client = aws.client("dynamodb")
    requests = [{"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}} for item in items]
    for start in range(0, len(requests), BATCH_WRITE_MAX):
        pending: dict[str, Any] = {table_name: requests[start:start + BATCH_WRITE_MAX]}
        for attempt in range(1, DELETE_ATTEMPTS + 1):
            if attempt > 1:
                _sleep(dynamo.backoff_seconds(attempt - 1))
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break


# --- the relay, the fallback ---------------------------------------------------------------------------------------
def _key(image: dict[str, Any]) -> tuple[str, str]:
    return image["pk"]["S"], image["sk"]["S"]


def plan(records: Sequence[dict[str, Any]], *, hold_back: bool) -> tuple[set[str], str | None]:
    """What the relay does with the ``direct`` items of a stream batch: the sequence numbers of those it skips
    (published by their function), and the sequence number from which it holds the batch back (None: it does not).

    An item whose delete is in the same batch was published. The others are read back (strongly consistent): gone,
    they were published; still there once their grace has passed, they were not, and the relay publishes them.
    One still in its grace (its function may still be publishing it: rare, the read comes a stream hop after the
    commit) is waited for, at most GRACE_SECONDS, and read again; with ``hold_back`` (the in-process bus, whose
    clock only moves between steps) the batch is published up to it and the rest left for a later poll."""
    removed = {_key(r["dynamodb"]["Keys"]) for r in records if r.get("eventName") == "REMOVE"
               and r["dynamodb"].get("Keys", {}).get("pk", {}).get("S", "").startswith(OUTBOX_PREFIX)}
    skip: set[str] = set()
    waiting: list[tuple[str, dict[str, Any]]] = []  # (sequence number, item) not deleted in the batch, stream order
    for record in records:
        image = record["dynamodb"].get("NewImage") or {}
        if record.get("eventName") != "INSERT" or DIRECT not in image:
            continue
        if _key(image) in removed:
            skip.add(record["dynamodb"]["SequenceNumber"])
            relayed["published by their function"] += 1
        else:
            waiting.append((record["dynamodb"]["SequenceNumber"], image))
    held = None
    waiting = _gone(waiting, skip)
    young = [(sequence, image) for sequence, image in waiting if float(image[DIRECT]["N"]) > now() * 1000]
    if young and hold_back:
        held = young[0][0]
        relayed["held back"] += 1
    elif young:
        _sleep(min(max(float(image[DIRECT]["N"]) for _, image in young) / 1000 - now(), GRACE_SECONDS))
        relayed["waited for"] += len(young)
        waiting = _gone(young, skip)
    relayed["relayed"] += len(waiting) if held is None else waiting.index(young[0])  # those before it, held back
    return skip, held


def _gone(waiting: list[tuple[str, dict[str, Any]]], skip: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """Reads the items back: adds those no longer in the table to ``skip``; the ones still there."""
    if not waiting:
        return []
    relayed["read back"] += len(waiting)
    try:
        present = still_present([image for _, image in waiting])
    except Exception as exc:  # unread: published again rather than perhaps never (consumers drop a duplicate)
        logger().warning("outbox items not read back; relayed", extra={"error": str(exc)[:300]})
        return waiting
    skip |= {sequence for sequence, image in waiting if _key(image) not in present}
    return [(sequence, image) for sequence, image in waiting if _key(image) in present]


def still_present(images: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(pk, sk) of the outbox items the service's table still holds (BatchGetItem, strongly consistent)."""
    return set(dynamo.get_many([_key(image) for image in images]))
