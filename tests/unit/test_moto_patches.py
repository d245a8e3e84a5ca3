"""The local TransactWriteItems fix behaves like DynamoDB (and like moto before it), at constant cost."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from local import moto_patches


@pytest.fixture
def table():
    moto_patches.apply()
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        yield client


def _stream(client) -> list[str]:
    streams = boto3.client("dynamodbstreams")
    arn = client.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    out = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out += [f"{r['eventName']} {r['dynamodb']['Keys']['pk']['S']}"
                for r in streams.get_records(ShardIterator=iterator)["Records"]]
    return out


def _items(client) -> dict[str, dict]:
    return {i["pk"]["S"]: i for i in client.scan(TableName="t")["Items"]}


def test_all_actions_apply_together(table):
    table.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    table.transact_write_items(TransactItems=[
        {"Update": {"TableName": "t", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET n = n + :one",
                    "ConditionExpression": "n = :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
    ])
    assert _items(table)["a"]["n"] == {"N": "2"} and "b" in _items(table)
    assert _stream(table) == ["INSERT a", "MODIFY a", "INSERT b"]


def test_a_failed_condition_changes_nothing_and_names_the_action(table):
    table.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    with pytest.raises(table.exceptions.TransactionCanceledException) as cancelled:
        table.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET n = :two",
                        "ConditionExpression": "n = :two", "ExpressionAttributeValues": {":two": {"N": "2"}}}},
        ])
    codes = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert codes == ["None", "ConditionalCheckFailed"]
    assert set(_items(table)) == {"a"} and _items(table)["a"]["n"] == {"N": "1"}
    assert _stream(table) == ["INSERT a"]


def test_a_value_dynamodb_refuses_while_applying_rolls_back_items_and_stream_records(table):
    table.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    with pytest.raises(table.exceptions.ClientError):
        table.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET n = :nine",
                        "ExpressionAttributeValues": {":nine": {"N": "9"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "K" * 2100}}}},  # key over 2,048 bytes
        ])
    assert set(_items(table)) == {"a"} and _items(table)["a"]["n"] == {"N": "1"}
    assert _stream(table) == ["INSERT a"]


def test_two_actions_on_one_item_are_refused(table):
    with pytest.raises(table.exceptions.ClientError):
        table.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "a"}}}},
        ])
    assert _items(table) == {}


def test_the_cost_does_not_grow_with_the_table(table):
    """What a transaction copies is what it touches: a large table is not deep-copied."""
    import copy

    for n in range(300):
        table.put_item(TableName="t", Item={"pk": {"S": f"x{n}"}, "blob": {"S": "y" * 100}})
    copies = []
    original = copy.deepcopy

    def counting(value, *args, **kwargs):
        copies.append(type(value).__name__)
        return original(value, *args, **kwargs)

    copy.deepcopy = counting
    try:
        table.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}}])
    finally:
        copy.deepcopy = original
    assert "Table" not in copies
