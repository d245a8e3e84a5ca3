"""The local gateway's read cache: a GET answered again, without running its function, while nothing it read changed.

Why: every local API request runs under one lock, one at a time (local/runtime.py). Ten clients polling their orders'
status every 100 ms keep that lock busy with reads whose answers have not changed, and the saga they wait on gets
what is left of the machine. An unchanged answer now costs no function call and no moto request.

Exact, as far as moto's state goes. While a GET's function runs, every AWS request it makes is recorded (the in-process
moto tells its observers of each request, in the thread that made it: local/moto_server.py): each DynamoDB item it
read (GetItem, BatchGetItem, TransactGetItems: the item's key; Query: the values its key condition binds with ``=``;
a Scan or a query of an index: the whole table). Every DynamoDB write moto applies, from this process or another one
(over its HTTP endpoint), is matched against what the cached answers read: a write to the same table whose request
names all of a read's key values drops every answer that read it, and one that was still being computed is not kept
(a write always names the key of each item it writes, so it cannot change a read without naming it). A request that
is not a read (a write, a message, an object) makes the answer uncachable: a cached answer would skip it.

What a kept answer may miss, for at most ``READ_CACHE_SECONDS`` (then the function runs again): what moto cannot see,
the clock (an answer computed from the time, e.g. GET /analytics/live) and KMS key state (opening a sealed value reads
the key store, which is tracked, then asks KMS). A GET whose requests went to another endpoint is never kept. Never
shared: the key is the request as sent (method, path, query, body and every header, so the caller's token too). Each
answer is fresh where a function would make it fresh: its own X-Correlation-Id (unless the client sent one, which is
then part of the key) and no traceresponse (nothing ran, so no span served it). Identical GETs in flight at once are
served by one function call.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# Assumed: a change moto cannot tell about (the clock, KMS key state) reaches a polling client within a second. It costs
# a function call per kept answer and second (bench/local_runtime.py's closed loop: ~2 per order at 5 s settle).
READ_CACHE_SECONDS = 1.0

DYNAMODB = "DynamoDB_20120810"  # X-Amz-Target's prefix (DynamoDB Streams has its own: not a table read or write)
ITEM_READS = frozenset({"GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan"})
ITEM_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
READ_ONLY_PREFIXES = ("Describe", "List", "Get", "BatchGet", "TransactGet", "Query", "Scan")
# Other requests a GET may make and still be answered again: opening a sealed value (local/read_cache's docstring).
HARMLESS = frozenset({"TrentService.Decrypt"})

Dependency = tuple[bytes, tuple[bytes, ...]]  # a table ('"name"' as JSON writes it) and the key values read there


@dataclass
class _Flight:
    """A GET's function while it runs: what it read so far, and whether its answer can be kept."""

    started: float
    reads: list[Dependency] = field(default_factory=list)
    keep: bool = True


@dataclass
class _Entry:
    response: dict[str, Any]
    reads: list[Dependency]
    computed: float  # when its function started: the answer is no older than that


class ReadCache:
    def __init__(self, *, seconds: float = READ_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock = seconds, clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}
        self._by_table: dict[bytes, set[Hashable]] = {}
        self._flights: list[_Flight] = []
        self._local = threading.local()
        self._one_at_a_time: dict[Hashable, list[Any]] = {}  # key -> [its lock, requests holding or awaiting it]
        self.hits = self.misses = 0

    # --- the gateway's side -----------------------------------------------------------------
    def answer(self, key: Hashable, invoke: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """The response to the request ``key``, and True if it is a kept one (``invoke`` did not run)."""
        with self._only_one(key):
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and self.clock() - entry.computed < self.seconds:
                    self.hits += 1
                    return _copy(entry.response), True
                self.misses += 1
                flight = _Flight(started=self.clock())
                self._flights.append(flight)
            self._local.flight = flight
            try:
                response = invoke()
            finally:
                self._local.flight = None
                with self._lock:
                    self._flights.remove(flight)
            status = int(response.get("statusCode", 500))
            with self._lock:  # with the flight's end: a write after this finds the entry, before it the flight
                self._drop(key)
                if flight.keep and status < 500 and status != 429:
                    self._entries[key] = _Entry(_copy(response), flight.reads, flight.started)
                    for table, _ in flight.reads:
                        self._by_table.setdefault(table, set()).add(key)
                self._drop_expired()
            return response, False

    @contextmanager
    def _only_one(self, key: Hashable) -> Iterator[None]:
        with self._lock:
            held = self._one_at_a_time.setdefault(key, [threading.Lock(), 0])
            held[1] += 1
        try:
            with held[0]:
                yield
        finally:
            with self._lock:
                held[1] -= 1
                if not held[1]:
                    del self._one_at_a_time[key]

    # --- moto's side (local.moto_server observer: under moto's lock, once the request is applied) -------------------
    def observe(self, target: str, body: bytes, answered: bool) -> None:
        service, _, action = target.partition(".")
        flight: _Flight | None = getattr(self._local, "flight", None)
        if flight is not None:
            self._record(flight, service, action, target, body, answered)
        if service == DYNAMODB and not action.startswith(READ_ONLY_PREFIXES):
            self._written(action, body)

    def _record(self, flight: _Flight, service: str, action: str, target: str, body: bytes, answered: bool) -> None:
        if not answered:  # served elsewhere: nothing tells this cache when that changes
            flight.keep = False
        elif service == DYNAMODB and action in ITEM_READS:
            try:
                read = item_reads(action, json.loads(body or b"{}"))
            except (ValueError, KeyError, TypeError, AttributeError, IndexError, StopIteration):
                flight.keep = False  # a read it cannot tell: never raised into the function's AWS call
                return
            with self._lock:
                flight.reads += read
        elif not (service == DYNAMODB and action.startswith(READ_ONLY_PREFIXES)) and target not in HARMLESS:
            flight.keep = False

    def _written(self, action: str, body: bytes) -> None:
        with self._lock:
            if action not in ITEM_WRITES:  # a table created, changed or dropped, a PartiQL statement: all of it
                for flight in self._flights:
                    flight.keep = False
                self._entries.clear()
                self._by_table.clear()
                return
            for flight in self._flights:
                if flight.keep and any(_names(body, read) for read in flight.reads):
                    flight.keep = False
            for table, keys in list(self._by_table.items()):
                if table in body:
                    for key in [k for k in keys if any(_names(body, read) for read in self._entries[k].reads)]:
                        self._drop(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            for table, _ in entry.reads:
                keys = self._by_table.get(table)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._by_table[table]

    def _drop_expired(self) -> None:
        now = self.clock()
        for key in [k for k, entry in self._entries.items() if now - entry.computed >= self.seconds]:
            self._drop(key)


def _names(body: bytes, read: Dependency) -> bool:
    table, values = read
    return table in body and all(value in body for value in values)


def _copy(response: dict[str, Any]) -> dict[str, Any]:
    return {**response, "headers": dict(response.get("headers") or {})}


def _quoted(value: str) -> bytes | None:
    """``value`` as a JSON request writes it, quotes included; None if JSON might escape it (then it is not matched
    on, which only makes the read depend on every write to its table)."""
    return f'"{value}"'.encode() if re.fullmatch(r"[\x20-\x7e]*", value) and not re.search(r'["\\]', value) else None


def _key_values(key: dict[str, Any]) -> tuple[bytes, ...] | None:
    values = [_quoted(str(next(iter(v.values())))) if isinstance(v, dict) and len(v) == 1 else None
              for v in key.values()]
    return tuple(v for v in values if v is not None) if all(v is not None for v in values) else None


def _table(name: str) -> bytes:
    return _quoted(name.rsplit("/", 1)[-1] if name.startswith("arn:") else name) or b""


def _read(table: str, values: tuple[bytes, ...] | None) -> Dependency:
    return _table(table), values or ()


def item_reads(action: str, body: dict[str, Any]) -> list[Dependency]:
    """What a DynamoDB read request read: per table, the key values that any write changing its answer names (none:
    any write to the table)."""
    if action == "GetItem":
        return [_read(body["TableName"], _key_values(body.get("Key") or {}))]
    if action == "BatchGetItem":
        return [_read(table, _key_values(key)) for table, asked in (body.get("RequestItems") or {}).items()
                for key in asked.get("Keys") or []]
    if action == "TransactGetItems":
        return [_read(get["TableName"], _key_values(get.get("Key") or {}))
                for item in body.get("TransactItems") or [] for get in item.values()]
    if action == "Query" and not body.get("IndexName"):
        # An item enters or leaves a base table's query only by a write naming its key, which holds every value
        # the key condition binds with "=" (an index's key is not in the write that changes what the index holds).
        values = body.get("ExpressionAttributeValues") or {}
        tokens = re.findall(r":[A-Za-z0-9_]+|[<>]=|<>|=|[^\s=<>]+", str(body.get("KeyConditionExpression") or ""))
        bound = {t for i, t in enumerate(tokens) if t.startswith(":") and (
            (i + 1 < len(tokens) and tokens[i + 1] == "=") or (i > 0 and tokens[i - 1] == "="))}
        legacy = {f"legacy{i}": condition["AttributeValueList"][0]
                  for i, condition in enumerate((body.get("KeyConditions") or {}).values())
                  if condition.get("ComparisonOperator") == "EQ" and condition.get("AttributeValueList")}
        return [_read(body["TableName"], _key_values({p: values[p] for p in bound if p in values} | legacy))]
    return [_read(body["TableName"], ())]  # a Scan, a query of an index
