"""The audit table: ``TRAIL#<correlationId>`` / ``<timestamp>#<eventId>``, written once, never updated.
The archive keeps the same envelopes in S3 (Object Lock), one object per batch, partition and day of event
time: ``<topic>/<yyyy>/<mm>/<dd>/<partition>-<first offset>-<last offset>-<digest of its offsets>.jsonl`` (one
envelope a line)."""

from __future__ import annotations

import contextvars
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from shopstream import aws, dynamo, pages, replica
from shopstream.envelope import EventEnvelope
from shopstream.transaction import MAX_TRANSACTION_ITEMS, ConditionFailed, UnitOfWork, put_once, try_commit, update_item

from .analytics import Tally, summed

# concurrent.futures' thread pool (0.75 ms on the API's init) is imported where windows are read side by side
# (``windows``): by the schedule's runs that close a window and, of the API's requests, GET /analytics/live only.


def record(envelope: dict[str, Any], topic: str, partition: int, offset: int, ttl: int) -> bool:
    """The event in its correlation's trail, written once (one conditional PutItem, no transaction: nothing
    else changes with it), expiring at ``ttl`` (epoch seconds). False if it was recorded before: the trail is
    immutable."""
    return put_once({"pk": f"TRAIL#{envelope['correlationId']}", "sk": f"{envelope['timestamp']}#{envelope['eventId']}",
                     "envelope": json.dumps(envelope, separators=(",", ":")), "topic": topic, "partition": partition,
                     "offset": offset, "ttl": ttl})


# A page of a trail stops before its envelopes pass 1 MB. An envelope is stored as ASCII JSON (json.dumps
# escapes the rest) and is re-encoded in the response at the same length; Lambda's response escapes it
# once more, at most doubling it (each '"' and '\\'). So a page is at most 2 MB of Lambda's 6 MB, whatever
# the events: one envelope alone is at most DynamoDB's 400 KB item, below the budget, so it always fits.
TRAIL_PAGE_BYTES = 1_000_000


def trail_page(correlation_id: str, limit: int, cursor: str | None,
               since: str) -> tuple[list[dict[str, Any]], str | None]:
    """A correlation id's events in event time from ``since`` (an envelope timestamp: the retention's start),
    ``limit`` at a time and at most TRAIL_PAGE_BYTES of them; the cursor to the next page, if any. Items past
    their TTL that DynamoDB has not deleted yet are left out by the key condition (no read spent on them), so
    the answer does not depend on when the deletion runs."""
    partition = {"pk": f"TRAIL#{correlation_id}"}
    start = pages.start_key(cursor, partition, ("sk",))
    if start is not None and start["sk"] < since:
        start = None  # the retention moved past the cursor: what it pointed at has expired
    items, last = dynamo.query_page("pk = :pk AND sk >= :since", {":pk": partition["pk"], ":since": since},
                                    limit=limit, start=start)
    kept: list[dict[str, Any]] = []
    size = 0
    for item in items:
        size += len(item["envelope"])
        if kept and size > TRAIL_PAGE_BYTES:
            last = {**partition, "sk": kept[-1]["sk"]}  # the next page starts at the first item left out
            break
        kept.append(item)
    return [json.loads(i["envelope"]) for i in kept], pages.cursor_after(last, partition="pk")


def archive_key(topic: str, day: str, partition: int, offsets: list[int]) -> str:
    """Zero-padded offsets: the objects of a partition list in offset order. The digest of every offset the object
    holds makes its key name its contents: the same records again find their object, while a batch with the same
    first and last offset but other records between (a whole batch delivered again after some of it failed) is
    another object, not a write refused as done."""
    digest = hashlib.sha256(",".join(map(str, offsets)).encode()).hexdigest()[:16]
    return f"{topic}/{day.replace('-', '/')}/{partition:04d}-{offsets[0]:019d}-{offsets[-1]:019d}-{digest}.jsonl"


def archive(bucket: str, topic: str, partition: int, records: list[tuple[int, dict[str, Any]]]) -> str:
    """One object for (offset, envelope) records of one partition and day, in offset order; its key.

    Written once: the same records delivered again find their object there (If-None-Match), so the locked
    archive grows no second version. A batch formed differently on a retry (after a partial failure)
    archives some events a second time, in another object: the archive holds every event at least once,
    and a reader keeps one per eventId (docs/decisions.md, 2026-11-29)."""
    day = records[0][1]["timestamp"][:10]
    key = archive_key(topic, day, partition, [offset for offset, _ in records])
    body = "".join(json.dumps(envelope, separators=(",", ":")) + "\n" for _, envelope in records)
    s3 = aws.client("s3")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson",
                      IfNoneMatch="*")
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "PreconditionFailed":
            raise
    return key


def archived(bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every archived envelope under ``prefix``, one per eventId."""
    s3 = aws.client("s3")
    out: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
            for line in body.splitlines():
                envelope = json.loads(line)
                out.setdefault(envelope["eventId"], envelope)
    return out


# --- analytics --------------------------------------------------------------------------------
# WINDOW#<minute> / TOTALS#<topic>#<p>  the window's counters (ADDed) from one source partition; a window's
#                                       figures are the sum of its partitions' items
# WINDOW#<minute> / FACT#<eventId>      an event counted in the window: written with the counters, once
# WINDOW#<minute> / JOIN#<orderId>      an order's created->confirmed time counted in the window, once
# WINDOW#<minute> / PRODUCT#<productId> units reserved of one product in the window
# ORDER#<orderId> / JOIN                the two sides of the join (CREATED, CONFIRMED), whichever arrives first
# DECLINES#<userId> / <time>#<eventId>  a customer's declined payments (the fraud pattern's facts)
# STOCK#<productId> / LEVEL#<n>         available stock of each of its counters (replicas: newest version wins)
# ALERTS / <alertId>                    every alert raised, once (its event goes out in the same transaction)
# ANALYTICS / CLOSED                    the newest window whose patterns were matched
# Everything expires with the ``ttl`` it is given.
def _window_pk(minute: str) -> str:
    return f"WINDOW#{minute}"


def _adds(counters: dict[str, int]) -> tuple[str, dict[str, str], dict[str, Any]]:
    names = {f"#c{i}": name for i, name in enumerate(counters)}
    values = {f":c{i}": value for i, value in enumerate(counters.values())}
    return ", ".join(f"#c{i} :c{i}" for i in range(len(counters))), names, values


JOIN_SIDES = ("CREATED", "CONFIRMED")
TOTALS = "TOTALS"
# The counters a window's items carry besides the sums.
_NOT_COUNTERS = frozenset({"pk", "sk", "ttl", "windowStart"})
_CONFLICT_RETRIES = 8


def count_each_once(tallies: list[Tally], counted_now: Callable[[list[Tally]], None] | None = None) -> list[Tally]:
    """Add each tally to its window unless its fact was counted there before; the tallies counted now are returned
    (the others were counted by an earlier delivery), and handed to ``counted_now`` as each transaction commits (so
    that what a later failure leaves committed still gets its metrics: a redelivery finds those facts counted).
    A window's facts of one shard and the sum of their counters go in one transaction (up to DynamoDB's 100
    actions): one update of the counters per batch, not one per event. A fact found already counted (its condition
    failed) is dropped and the rest written again."""
    groups: dict[tuple[str, str], dict[str, Tally]] = {}
    for tally in tallies:  # a fact twice in one batch (a duplicate delivery) is one action at most
        groups.setdefault((tally.minute, tally.shard), {}).setdefault(tally.fact, tally)
    counted: list[Tally] = []
    for (minute, shard), by_fact in groups.items():
        pending = list(by_fact.values())
        while pending:
            chunk = _fitting(pending)
            try:
                _commit_counts(minute, shard, chunk)
            except ConditionFailed as exc:
                done_before = set(exc.failed_indexes())
                if not done_before or max(done_before) >= len(chunk):  # only the facts carry a condition
                    raise
                pending = [t for i, t in enumerate(chunk) if i not in done_before] + pending[len(chunk):]
                continue
            counted += chunk
            pending = pending[len(chunk):]
            if counted_now is not None:
                counted_now(chunk)
    return counted


def _fitting(pending: list[Tally]) -> list[Tally]:
    """The first tallies whose facts, counters item and product items fit one transaction."""
    products: set[str] = set()
    for size, tally in enumerate(pending):
        products |= set(tally.products)
        if size + 1 + 1 + len(products) > MAX_TRANSACTION_ITEMS:
            return pending[:max(size, 1)]
    return pending


def _commit_counts(minute: str, shard: str, chunk: list[Tally]) -> None:
    pk, ttl = _window_pk(minute), max(t.ttl for t in chunk)
    counters, products = summed(chunk)

    def attempt() -> None:
        uow = UnitOfWork()
        for tally in chunk:
            uow.put({"pk": pk, "sk": tally.fact, "ttl": tally.ttl}, condition="attribute_not_exists(pk)")
        adds, names, values = _adds(counters)
        uow.update({"pk": pk, "sk": f"{TOTALS}#{shard}"}, update=f"ADD {adds} SET #ttl = :ttl, #start = :start",
                   names={**names, "#ttl": "ttl", "#start": "windowStart"},
                   values={**values, ":ttl": ttl, ":start": minute})
        for product_id, units in products.items():
            uow.update({"pk": pk, "sk": f"PRODUCT#{product_id}"}, update="ADD #units :units SET #ttl = :ttl",
                       names={"#units": "units", "#ttl": "ttl"}, values={":units": units, ":ttl": ttl})
        uow.commit()

    for retry in range(_CONFLICT_RETRIES):
        try:
            attempt()
            return
        except ConditionFailed:
            raise
        except Exception as exc:  # another batch's transaction on the same product item: wait, then again
            if not _transaction_conflict(exc) or retry == _CONFLICT_RETRIES - 1:
                raise
            time.sleep(dynamo.backoff_seconds(retry + 1))


def _transaction_conflict(exc: Exception) -> bool:
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    return any(reason.get("Code") == "TransactionConflict" for reason in reasons)


WINDOW_READERS = 8  # windows read side by side (GET /analytics/live asks for up to its maximum of minutes)


def windows(minutes: list[str]) -> dict[str, dict[str, int]]:
    """The counters of each window that has any: the sum of its shards' items (and of the one ``TOTALS`` item
    that windows counted before the shards had). A Query per window, several at once, each in a copy of the
    caller's context (its settings: which table; the local runtime runs every service in one process)."""
    from concurrent.futures import ThreadPoolExecutor

    def read(minute: str) -> list[dict[str, Any]]:
        return dynamo.query("pk = :pk AND begins_with(sk, :totals)", {":pk": _window_pk(minute), ":totals": TOTALS})

    with ThreadPoolExecutor(max_workers=max(1, min(WINDOW_READERS, len(minutes)))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, read, minute) for minute in minutes]
        read_back = [future.result() for future in futures]
    found: dict[str, dict[str, int]] = {}
    for minute, items in zip(minutes, read_back, strict=True):
        if not items:
            continue
        sums: dict[str, int] = {}
        for item in items:
            for name, value in item.items():
                if name not in _NOT_COUNTERS:
                    sums[name] = sums.get(name, 0) + int(value)
        found[minute] = sums
    return found


def products_in(minute: str) -> dict[str, int]:
    items = dynamo.query("pk = :pk AND begins_with(sk, :p)", {":pk": _window_pk(minute), ":p": "PRODUCT#"})
    return {i["sk"].removeprefix("PRODUCT#"): int(i["units"]) for i in items}


def units_of(product_id: str, minutes: list[str]) -> int:
    found = dynamo.get_many([(_window_pk(m), f"PRODUCT#{product_id}") for m in minutes])
    return sum(int(item["units"]) for item in found.values())


def record_join_side(order_id: str, side: str, at: str, ttl: int) -> dict[str, str]:
    """Record when the order was created or confirmed (the first write stands); both sides known so far.
    One atomic update that returns the item: of two sides arriving together, the second sees both."""
    _, item = update_item({"pk": f"ORDER#{order_id}", "sk": "JOIN"},
                          update="SET #side = if_not_exists(#side, :at), #ttl = :ttl",
                          names={"#side": side, "#ttl": "ttl"}, values={":at": at, ":ttl": ttl})
    return {name: (item or {})[name] for name in JOIN_SIDES if name in (item or {})}


def record_decline(user_id: str, at: str, event_id: str, payment_id: str, ttl: int) -> None:
    put_once({"pk": f"DECLINES#{user_id}", "sk": f"{at}#{event_id}", "paymentId": payment_id, "at": at,
              "ttl": ttl})


def declines_between(user_id: str, start: str, end: str) -> list[tuple[str, str]]:
    """(time, paymentId) of the customer's declines with ``start <= time <= end`` (ISO-8601 UTC)."""
    items = dynamo.query("pk = :pk AND sk BETWEEN :start AND :end",
                         {":pk": f"DECLINES#{user_id}", ":start": start, ":end": f"{end}#~"})
    return [(i["at"], i["paymentId"]) for i in items]


def apply_stock(product_id: str, shard: int, version: int, available: int) -> None:
    """One of the product's stock counters (newest version wins)."""
    replica.apply({"pk": f"STOCK#{product_id}", "sk": f"LEVEL#{shard:04d}", "productId": product_id}, version,
                  {"available": available})


def available_stock(product_id: str) -> int | None:
    """Units available: the sum over the product's counters (None: no level seen yet)."""
    items = dynamo.query("pk = :pk AND begins_with(sk, :levels)", {":pk": f"STOCK#{product_id}", ":levels": "LEVEL#"})
    levels = [int(item["available"]) for item in items if "available" in item]
    return sum(levels) if levels else None


def raise_alert(alert: dict[str, Any], envelope: EventEnvelope) -> bool:
    """The alert and its event, once: False if this alert was raised before."""
    uow = UnitOfWork()
    uow.put({"pk": "ALERTS", "sk": alert["alertId"], **alert,
             "summary": json.dumps(alert["summary"], separators=(",", ":")),  # floats: kept as JSON text
             "envelope": json.dumps(envelope.to_wire(), separators=(",", ":"))},
            condition="attribute_not_exists(pk)")
    uow.emit(envelope)
    return try_commit(uow)


def alerts() -> list[dict[str, Any]]:
    return [{**{k: v for k, v in i.items() if k not in ("pk", "sk", "ttl", "envelope")},
             "summary": json.loads(i["summary"]), "event": json.loads(i["envelope"])}
            for i in dynamo.query("pk = :pk", {":pk": "ALERTS"})]


def closed_up_to() -> tuple[str | None, int]:
    """The newest window whose patterns were matched, and the cursor's version (0: none yet)."""
    item = dynamo.get("ANALYTICS", "CLOSED")
    return (item["minute"], int(item["version"])) if item else (None, 0)


def close_up_to(minute: str, read_version: int) -> bool:
    """Move the cursor, unless another run moved it since it was read (that run did the work)."""
    uow = UnitOfWork()
    uow.put_versioned({"pk": "ANALYTICS", "sk": "CLOSED", "minute": minute}, read_version)
    return try_commit(uow)
