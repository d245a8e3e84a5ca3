"""Item (de)serialization and the few read calls stores share. Expressions stay in stores."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypedDict

from shopstream import aws
from shopstream.config import get_settings

# boto3's type (de)serializers (boto3 with them: ~115-150 ms on a function's init) are imported by the first item
# converted: every function but the relay loads this module at init, and converts nothing there.


class Key(TypedDict):
    """Every service table's primary key (catalog.TableSpec)."""

    pk: str
    sk: str


def _serializer() -> Any:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _deserializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [_plain(v) for v in value]
    return value


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    serializer = _serializer()
    return {k: serializer.serialize(v) for k, v in item.items() if v is not None}


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = _deserializer()
    return {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}


def assignments(fields: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``#a = :a, #b = :b`` with its names and values, for a store's SET clause (the store owns the rest)."""
    names = {f"#{k}": k for k in fields}
    values = {f":{k}": v for k, v in fields.items()}
    return ", ".join(f"#{k} = :{k}" for k in fields), names, values


def table_name() -> str:
    return get_settings().table_name


def get(pk: str, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
    found = aws.client("dynamodb").get_item(
        TableName=table_name(), Key=to_attributes({"pk": pk, "sk": sk}), ConsistentRead=consistent)
    return from_attributes(found["Item"]) if "Item" in found else None


def get_many(keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """BatchGetItem (consistent), keyed by (pk, sk); missing keys are absent."""
    found = batch_read({table_name(): [{"pk": pk, "sk": sk} for pk, sk in dict.fromkeys(keys)]})
    return {(item["pk"], item["sk"]): item for item in found[table_name()]}


class Unprocessed(RuntimeError):
    """BatchGetItem still left keys unread after every attempt. Transient: a consumer's record fails and
    its mapping retries it, an API call fails; nobody is served a partial read."""


# Unprocessed keys are asked again after capped exponential backoff with full jitter, as AWS asks
# ("we strongly recommend that you use an exponential backoff algorithm", API_BatchGetItem): at most
# 6 waits of up to 0.05, 0.1, 0.2, 0.4, 0.8, 1 s (2.55 s in all, inside any function's timeout).
BATCH_READ_ATTEMPTS = 7
BATCH_READ_FIRST_WAIT_SECONDS = 0.05
BATCH_READ_MAX_WAIT_SECONDS = 1.0
_sleep = time.sleep  # tests replace it


def backoff_seconds(retry: int) -> float:
    """The wait before retry ``retry`` (1, 2, ...): uniform in [0, min(max, first * 2**(retry-1))]."""
    ceiling = min(BATCH_READ_MAX_WAIT_SECONDS, BATCH_READ_FIRST_WAIT_SECONDS * 2 ** (retry - 1))
    return random.uniform(0, ceiling)


def batch_read(keys_by_table: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Consistent reads of items of several tables in as few BatchGetItem calls as hold them (100
    keys each); the items found, by table. Unprocessed keys are asked again with backoff, at most
    ``BATCH_READ_ATTEMPTS`` calls per 100 keys, then ``Unprocessed`` is raised."""
    out: dict[str, list[dict[str, Any]]] = {table: [] for table in keys_by_table}
    pending = [(table, to_attributes(key)) for table, keys in keys_by_table.items() for key in keys]
    client = aws.client("dynamodb")
    while pending:
        batch, pending = pending[:100], pending[100:]
        request: dict[str, Any] = {}
        for table, key in batch:
            request.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
        for attempt in range(1, BATCH_READ_ATTEMPTS + 1):
            if attempt > 1:
                _sleep(backoff_seconds(attempt - 1))
            response = client.batch_get_item(RequestItems=request)
            for table, items in response["Responses"].items():
                out[table] += [from_attributes(raw) for raw in items]
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            unread = sum(len(r["Keys"]) for r in request.values())
            raise Unprocessed(f"BatchGetItem left {unread} keys unread after {BATCH_READ_ATTEMPTS} attempts")
    return out


def query(key_condition: str, values: dict[str, Any], *, names: dict[str, str] | None = None,
          index: str | None = None, filter_expression: str | None = None, forward: bool = True,
          limit: int | None = None) -> list[dict[str, Any]]:
    """Every matching item (all pages). On the table itself the read is consistent, as ``get`` is (an
    index is eventually consistent whatever is asked: DynamoDB refuses ConsistentRead on a GSI)."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(), "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": to_attributes(values), "ScanIndexForward": forward,
        "ConsistentRead": index is None,
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if index:
        kwargs["IndexName"] = index
    if filter_expression:
        kwargs["FilterExpression"] = filter_expression
    items: list[dict[str, Any]] = []
    client = aws.client("dynamodb")
    while True:
        if limit:
            kwargs["Limit"] = limit - len(items)
        response = client.query(**kwargs)
        items += [from_attributes(i) for i in response["Items"]]
        if "LastEvaluatedKey" not in response or (limit and len(items) >= limit):
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def query_page(key_condition: str, values: dict[str, Any], *, limit: int, start: dict[str, Any] | None = None,
               index: str | None = None, forward: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a query: at most ``limit`` items after ``start`` (the key a previous page stopped at),
    and the key this page stopped at (None: nothing further). Consistent on the table, as ``query``."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(), "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": to_attributes(values), "ScanIndexForward": forward,
        "ConsistentRead": index is None, "Limit": limit,
    }
    if index:
        kwargs["IndexName"] = index
    if start:
        kwargs["ExclusiveStartKey"] = to_attributes(start)
    response = aws.client("dynamodb").query(**kwargs)
    last = response.get("LastEvaluatedKey")
    return [from_attributes(i) for i in response["Items"]], from_attributes(last) if last else None
