from __future__ import annotations

import pytest
from moto import mock_aws

from local import naming, provision


@pytest.fixture
def aws():
    """moto in-process with the catalog's tables and queues; env points the runtime at them."""
    import boto3

    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        provision.create_tables(dynamodb)
        queues = provision.create_queues(boto3.client("sqs"))
        provision.create_customer_data_key(boto3.client("kms"))
        yield {"dynamodb": dynamodb, "sqs": boto3.client("sqs"), "queues": queues}


@pytest.fixture
def service_env(aws, monkeypatch):
    """Configure the process as one handler of one service (what CDK / the runner would set)."""

    def configure(service: str, handler: str | None = None) -> dict[str, str]:
        env = {
            "SHOPSTREAM_SERVICE": service,
            "SHOPSTREAM_TABLE_NAME": naming.table(service),
            "SHOPSTREAM_IDEMPOTENCY_TABLE_NAME": naming.idempotency_table(service),
        }
        if handler:
            env["SHOPSTREAM_HANDLER"] = handler
            env["SHOPSTREAM_DLQ_URL"] = aws["queues"][naming.dlq(service, handler)]
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        from shopstream.config import reset_settings

        reset_settings()
        return env

    return configure


@pytest.fixture
def as_service(aws):
    """Run code as one service (its table and settings, and the customer key store), several services in one
    test."""
    from shopstream.config import override_settings

    def enter(service: str):
        return override_settings(naming.function_settings(service).model_copy(update={
            "customer_keys_table": naming.CUSTOMER_KEYS_TABLE, "customer_data_key": naming.CUSTOMER_DATA_KEY}))
    return enter


@pytest.fixture
def outbox(monkeypatch):
    """Every event committed by any service, in commit order."""
    from shopstream import transaction

    events: list = []

    def after_commit(uow: transaction.UnitOfWork | None) -> None:
        if uow is not None:
            events.extend(uow.events)

    monkeypatch.setattr(transaction, "_after_commit", after_commit)
    return events
