"""The in-process moto's clients compute no signature while it runs, and the signing ones come back once the last
in-process moto stops, whatever the order they stop in, and when one fails to start."""

from __future__ import annotations

import socket
from typing import Any, Literal

import pytest
from botocore import UNSIGNED

from local import moto_server
from local.moto_server import InProcessMoto, install_unsigned_clients, remove_unsigned_clients
from shopstream import aws


def _signs(service: Literal["dynamodb", "s3"]) -> bool:
    config: Any = aws.client(service).meta.config  # botocore's stubs leave out the config's attributes
    return config.signature_version is not UNSIGNED


def signs() -> bool:
    return _signs("dynamodb")


def test_overlapping_installs_stop_in_any_order():
    signing = aws._client
    assert signs()
    install_unsigned_clients()
    install_unsigned_clients()
    assert not signs() and _signs("s3")  # S3 signs, as before
    remove_unsigned_clients()
    assert not signs()  # one still runs
    remove_unsigned_clients()
    assert signs() and aws._client is signing
    remove_unsigned_clients()  # one too many changes nothing
    assert aws._client is signing


def test_an_in_process_moto_that_cannot_start_leaves_the_signing_clients():
    signing = aws._client
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            InProcessMoto("127.0.0.1", taken.getsockname()[1])
    assert aws._client is signing and signs() and moto_server._signing_factory == []


def test_an_in_process_moto_answers_unsigned_calls_and_puts_the_signing_ones_back(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    signing = aws._client
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    moto = InProcessMoto("127.0.0.1", port)
    try:
        assert not signs()
        aws.client("sqs").create_queue(QueueName="q")
        assert aws.client("sqs").list_queues()["QueueUrls"][0].endswith("/q")
    finally:
        moto.stop()
    assert aws._client is signing and signs()
