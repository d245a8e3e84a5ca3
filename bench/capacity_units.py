"""DynamoDB capacity units of one low-level call, by DynamoDB's documented rules, from the request, the
response and the items as stored just before and just after the call (``Store``: moto's in the bench).

Sources (developer guide): "DynamoDB item sizes and formats" (CapacityUnitCalculations.html) for an item's
size; "DynamoDB read and write operations" (read-write-operations.html) for the units; "Managing capacity for
transactions" for the doubling. What is approximate, and how:
- a number's size is (significant digits + 1) // 2 + 1 bytes ("approximately", per the guide); a set's is
  the sum of its members' (the guide gives no per-set overhead);
- a write is billed on the larger of the item before and after it (PutItem, UpdateItem; DeleteItem on the
  item deleted), rounded up to 1 KB, at least 1 unit; a write whose condition fails is billed on the item
  as stored (at least 1 unit), as the guide says for conditional writes;
- every action of a TransactWriteItems (ConditionCheck included) is billed twice (prepare and commit), also
  when the transaction is cancelled: an upper bound, the guide does not say what a cancelled one costs;
- a global secondary index is written when an item enters, leaves, or changes in it (a key change is a
  delete and a put), on the projected item's size (index overhead of the guide's ~100 bytes ignored);
- GetItem and BatchGetItem bill each key on its stored item (a missing one at the minimum), Query and Scan
  the sum of the items they return rounded up to 4 KB once (scaled up to ScannedCount when a filter
  dropped some), half for eventually consistent reads, twice for TransactGetItems.
"""

from __future__ import annotations

import base64
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
TRANSACTION_FACTOR = 2  # prepare + commit, per item


# --- item size --------------------------------------------------------------------------------
def number_size(text: str) -> int:
    digits = text.lstrip("+-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def value_size(value: dict[str, Any]) -> int:
    """Size of one typed attribute value ({"S": ...}, {"M": {...}}, ...) without its name."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(str(inner))
    if kind == "B":
        return len(base64.b64decode(inner)) if isinstance(inner, str) else len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(number_size(str(n)) for n in inner)
    if kind == "BS":
        return sum(value_size({"B": b}) for b in inner)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, dict[str, Any]] | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units if consistent else units / 2


# --- the store the items are looked up in -----------------------------------------------------
@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str = "ALL"  # ALL | KEYS_ONLY | INCLUDE
    included: tuple[str, ...] = ()


class Store(Protocol):
    def key_names(self, table: str) -> tuple[str, ...]: ...

    def indexes(self, table: str) -> list[Index]: ...

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None: ...


@dataclass
class Units:
    write: float = 0.0  # table writes
    index_write: float = 0.0  # global secondary index writes
    read: float = 0.0
    # (table, write|index_write|read) -> units
    by_table: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))

    def add(self, table: str, kind: str, units: float) -> None:
        setattr(self, kind, getattr(self, kind) + units)
        self.by_table[(table, kind)] += units

    def __iadd__(self, other: Units) -> Units:
        self.write += other.write
        self.index_write += other.index_write
        self.read += other.read
        for key, units in other.by_table.items():
            self.by_table[key] += units
        return self


@dataclass
class _Target:
    table: str
    key: dict[str, Any]
    kind: str  # Put | Update | Delete | ConditionCheck
    put: dict[str, Any] | None = None  # the item a Put writes
    before: dict[str, Any] | None = None


@dataclass
class Call:
    """One call in flight: ``begin`` before it is sent (items as stored before), ``end`` with its response."""

    operation: str
    params: dict[str, Any]
    store: Store
    targets: list[_Target] = field(default_factory=list)

    def begin(self) -> Call:
        for target in self._write_targets():
            target.before = self.store.get(target.table, target.key)
            self.targets.append(target)
        return self

    def _key_of(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in self.store.key_names(table) if name in item}

    def _write_targets(self) -> Iterable[_Target]:
        p = self.params
        if self.operation == "PutItem":
            yield _Target(p["TableName"], self._key_of(p["TableName"], p["Item"]), "Put", put=p["Item"])
        elif self.operation == "UpdateItem":
            yield _Target(p["TableName"], p["Key"], "Update")
        elif self.operation == "DeleteItem":
            yield _Target(p["TableName"], p["Key"], "Delete")
        elif self.operation == "TransactWriteItems":
            for action in p["TransactItems"]:
                (kind, body), = action.items()
                if kind == "Put":
                    yield _Target(body["TableName"], self._key_of(body["TableName"], body["Item"]), kind,
                                  put=body["Item"])
                else:
                    yield _Target(body["TableName"], body["Key"], kind)
        elif self.operation == "BatchWriteItem":
            for table, requests in p["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        yield _Target(table, self._key_of(table, item), "Put", put=item)
                    else:
                        yield _Target(table, request["DeleteRequest"]["Key"], "Delete")

    def end(self, response: dict[str, Any], *, succeeded: bool) -> Units:
        units = Units()
        factor = TRANSACTION_FACTOR if self.operation == "TransactWriteItems" else 1
        for target in self.targets:
            after = self.store.get(target.table, target.key) if succeeded else target.before
            if not succeeded or target.kind in ("ConditionCheck", "Delete"):
                size = item_size(target.before)
            else:
                size = max(item_size(target.before), item_size(after if after is not None else target.put))
            units.add(target.table, "write", factor * write_units(size))
            if succeeded and target.kind != "ConditionCheck":
                units.add(target.table, "index_write", sum(
                    _index_writes(index, self.store.key_names(target.table), target.before, after)
                    for index in self.store.indexes(target.table)))
        for table, read in self._reads(response).items() if succeeded else ():
            units.add(table, "read", read)
        return units

    def _reads(self, response: dict[str, Any]) -> dict[str, float]:
        """Read units by table."""
        p = self.params
        out: defaultdict[str, float] = defaultdict(float)
        if self.operation == "GetItem":
            stored = self.store.get(p["TableName"], p["Key"])
            out[p["TableName"]] += read_units(item_size(stored), consistent=bool(p.get("ConsistentRead")))
        elif self.operation == "BatchGetItem":
            for table, ask in p["RequestItems"].items():
                for key in ask["Keys"]:
                    out[table] += read_units(item_size(self.store.get(table, key)),
                                             consistent=bool(ask.get("ConsistentRead")))
        elif self.operation == "TransactGetItems":
            for get in (a["Get"] for a in p["TransactItems"]):
                out[get["TableName"]] += TRANSACTION_FACTOR * read_units(
                    item_size(self.store.get(get["TableName"], get["Key"])), consistent=True)
        elif self.operation in ("Query", "Scan"):
            table = p["TableName"]
            items = response.get("Items", [])
            size = sum(item_size(self.store.get(table, self._key_of(table, item)) or item) for item in items)
            scanned = response.get("ScannedCount", len(items))
            if items and scanned > len(items):
                size = size * scanned // len(items)
            out[table] += read_units(size, consistent=bool(p.get("ConsistentRead")))
        return out


def _projected(index: Index, table_keys: tuple[str, ...], item: dict[str, Any] | None) -> dict[str, Any] | None:
    """The item as the index holds it; None when the item is not in the index (an index key is missing)."""
    if item is None or any(name not in item for name in index.keys):
        return None
    if index.projection == "ALL":
        return item
    kept = set(index.keys) | set(table_keys) | (set(index.included) if index.projection == "INCLUDE" else set())
    return {name: value for name, value in item.items() if name in kept}


def _index_writes(index: Index, table_keys: tuple[str, ...], before: dict[str, Any] | None,
                  after: dict[str, Any] | None) -> int:
    old, new = _projected(index, table_keys, before), _projected(index, table_keys, after)
    if old == new:
        return 0
    if old is None:
        return write_units(item_size(new))
    if new is None:
        return write_units(item_size(old))
    if any(old[name] != new[name] for name in index.keys):  # moved: a delete and a put
        return write_units(item_size(old)) + write_units(item_size(new))
    return write_units(max(item_size(old), item_size(new)))


# --- moto's store, in process -------------------------------------------------------------------
class MotoStore:
    """Items as moto holds them (mock_aws in this process): looked up, never changed."""

    def __init__(self, region: str, account: str | None = None):
        self.region, self.account = region, account or DEFAULT_ACCOUNT_ID

    def _table(self, table: str) -> Any:
        return dynamodb_backends[self.account][self.region].get_table(table)

    def key_names(self, table: str) -> tuple[str, ...]:
        t = self._table(table)
        return tuple(name for name in (t.hash_key_attr, t.range_key_attr) if name)

    def indexes(self, table: str) -> list[Index]:
        out = []
        for index in self._table(table).global_indexes:
            projection = index.projection or {}
            out.append(Index(index.name, tuple(index.schema_key_attrs), projection.get("ProjectionType", "ALL"),
                             tuple(projection.get("NonKeyAttributes", ()))))
        return out

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        t = self._table(table)
        if t.hash_key_attr not in key or (t.range_key_attr and t.range_key_attr not in key):
            return None
        found = t.get_item(DynamoType(key[t.hash_key_attr]),
                           DynamoType(key[t.range_key_attr]) if t.range_key_attr else None)
        return found.to_json()["Attributes"] if found is not None else None
