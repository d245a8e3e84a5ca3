"""Throttling (a provisioned table over its capacity, docs/decisions.md 2026-12-05) is transient: each kind of
write surfaces it as an error the consumer runtime retries, never as a lost race (which would drop the write)
nor as poison (which would dead-letter the event). A stubbed client plays DynamoDB, past botocore's own retries."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.stub import Stubber

from shopstream import aws, transaction
from shopstream.config import Settings, override_settings
from shopstream.consumer import permanent_failure

THROTTLED = "ProvisionedThroughputExceededException"


@pytest.fixture
def dynamodb(monkeypatch):
    """A client that answers each call with the error queued on its stubber (no retries of its own)."""
    import boto3
    from botocore.config import Config

    client = boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"total_max_attempts": 1}))
    monkeypatch.setattr(aws, "client", lambda name: client)
    with Stubber(client) as stubber, override_settings(Settings(table_name="t")):
        yield stubber


def _commit() -> None:
    uow = transaction.UnitOfWork()
    uow.put({"pk": "A", "sk": "1"}, condition="attribute_not_exists(pk)")
    uow.update({"pk": "B", "sk": "1"}, update="SET n = :n", values={":n": 1})
    transaction.try_commit(uow)  # a lost race would be swallowed here: throttling must not be one


WRITES: dict[str, tuple[str, Callable[[], object], dict]] = {
    "a transaction": ("transact_write_items", _commit, {"CancellationReasons": [
        {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of your table or index"},
        {"Code": "None"}]}),
    "a write-once put": ("put_item", lambda: transaction.put_once({"pk": "A", "sk": "1"}), {}),
    "a single-item update": ("update_item", lambda: transaction.update_item(
        {"pk": "A", "sk": "1"}, update="SET n = :n", values={":n": 1}), {}),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_throttled_write_raises_a_transient_error(dynamodb, write):
    operation, run, extra = WRITES[write]
    code = "TransactionCanceledException" if operation == "transact_write_items" else THROTTLED
    dynamodb.add_client_error(operation, service_error_code=code, http_status_code=400, service_message="throttled",
                              response_meta=None, modeled_fields=extra or None)
    with pytest.raises(Exception) as raised:  # what matters is how the runtime classifies it
        run()
    assert not isinstance(raised.value, transaction.ConditionFailed)
    assert permanent_failure(raised.value) is None  # retried by the mapping, not dead-lettered
