"""The bench's DynamoDB capacity units (bench/capacity_units.py): DynamoDB's documented item-size and unit rules."""

from __future__ import annotations

from typing import Any

import pytest

from bench.capacity_units import Call, Index, item_size, number_size, read_units, value_size, write_units

TABLE = "t"


class FakeStore:
    """Items by (pk, sk); one global secondary index on gsi1pk/gsi1sk, projecting every attribute."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def key_names(self, table: str) -> tuple[str, ...]:
        return ("pk", "sk")

    def indexes(self, table: str) -> list[Index]:
        return [Index("gsi1", ("gsi1pk", "gsi1sk"))]

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        return self.items.get((key["pk"]["S"], key["sk"]["S"]))

    def put(self, item: dict[str, Any]) -> None:
        self.items[(item["pk"]["S"], item["sk"]["S"])] = item


def s(text: str) -> dict[str, str]:
    return {"S": text}


def item(pk: str, padding: int = 0, **extra: Any) -> dict[str, Any]:
    """pk, sk "x" and a ``body`` of ``padding`` bytes: size 2 + len(pk) + 2 + 1 + 4 + padding."""
    return {"pk": s(pk), "sk": s("x"), "body": s("b" * padding), **extra}


def test_sizes_follow_the_documented_rules():
    assert value_size(s("héllo")) == 6  # UTF-8 bytes
    # 5 significant digits: 3 bytes, +1
    assert number_size("123.4500") == 4 and number_size("-0.001") == 2 and number_size("0") == 1
    assert value_size({"B": "AAEC"}) == 3  # raw bytes, not base64's
    assert value_size({"BOOL": True}) == value_size({"NULL": True}) == 1
    assert value_size({"L": [s("ab"), s("c")]}) == 3 + (2 + 1) + (1 + 1)
    assert value_size({"M": {"k": s("ab")}}) == 3 + 1 + 2 + 1
    assert item_size({"name": s("ab"), "n": {"N": "7"}}) == (4 + 2) + (1 + 2)  # names count


def test_units_round_up_per_kilobyte_written_and_per_four_read():
    assert [write_units(n) for n in (0, 1024, 1025)] == [1, 1, 2]
    assert read_units(4096, consistent=True) == 1 and read_units(4097, consistent=True) == 2
    assert read_units(10, consistent=False) == 0.5


def test_every_item_of_a_transaction_is_written_twice_a_condition_check_too():
    store = FakeStore()
    store.put(item("checked"))
    big = item("big", padding=1500)
    call = Call("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": TABLE, "Item": item("small")}},
        {"Put": {"TableName": TABLE, "Item": big}},
        {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": s("checked"), "sk": s("x")}}}]}, store).begin()
    store.put(item("small"))
    store.put(big)
    units = call.end({}, succeeded=True)
    assert units.write == 2 * 1 + 2 * 2 + 2 * 1 and units.by_table == {(TABLE, "write"): 8, (TABLE, "index_write"): 0}


def test_an_update_is_billed_on_the_larger_item_and_a_failed_condition_on_the_stored_one():
    store = FakeStore()
    store.put(item("a", padding=2000))
    call = Call("UpdateItem", {"TableName": TABLE, "Key": {"pk": s("a"), "sk": s("x")}}, store).begin()
    store.put(item("a", padding=10))  # the update shrank it
    assert call.end({}, succeeded=True).write == 2

    failed = Call("PutItem", {"TableName": TABLE, "Item": item("a", padding=5000)}, store).begin()
    assert failed.end({}, succeeded=False).write == 1  # the stored item is small; nothing was written

    one_item_transaction = Call("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": TABLE, "Item": item("a")}}]}, store).begin()
    assert one_item_transaction.end({}, succeeded=False).write == 2


@pytest.mark.parametrize(("before", "after", "expected"), [
    (None, {"gsi1pk": s("P"), "gsi1sk": s("1")}, 1),  # enters the index
    ({"gsi1pk": s("P"), "gsi1sk": s("1")}, {"gsi1pk": s("P"), "gsi1sk": s("2")}, 2),  # moves: delete + put
    ({"gsi1pk": s("P"), "gsi1sk": s("1")}, {}, 1),  # leaves it
    ({}, {"other": s("y")}, 0),  # never in it
    ({"gsi1pk": s("P"), "gsi1sk": s("1")}, {"gsi1pk": s("P"), "gsi1sk": s("1"), "other": s("y")}, 1),
])
def test_the_index_is_written_when_an_item_enters_leaves_moves_or_changes_in_it(before, after, expected):
    store = FakeStore()
    if before is not None:
        store.put(item("a", **before))
    call = Call("UpdateItem", {"TableName": TABLE, "Key": {"pk": s("a"), "sk": s("x")}}, store).begin()
    store.put(item("a", **after))
    units = call.end({}, succeeded=True)
    assert (units.write, units.index_write) == (1, expected)


def test_reads_round_each_item_of_a_batch_but_a_query_once():
    store = FakeStore()
    for pk in ("a", "b", "c"):
        store.put(item(pk, padding=1000))
    keys = [{"pk": s(pk), "sk": s("x")} for pk in ("a", "b", "c", "missing")]
    batch = Call("BatchGetItem", {"RequestItems": {TABLE: {"Keys": keys, "ConsistentRead": True}}}, store).begin()
    assert batch.end({}, succeeded=True).read == 4  # three items and the missing key, each at least a unit
    query = Call("Query", {"TableName": TABLE}, store).begin()
    assert query.end({"Items": list(store.items.values())}, succeeded=True).read == 0.5  # ~3 KB, eventually
    get = Call("GetItem", {"TableName": TABLE, "Key": keys[0], "ConsistentRead": True}, store).begin()
    assert get.end({}, succeeded=True).read == 1
