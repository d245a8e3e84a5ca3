"""Shared fixtures. No test needs AWS credentials, Docker or the internet."""

from __future__ import annotations

import os

# Before anything imports boto3: fake credentials, a region, and no account-id endpoints
# (moto's in-process DynamoDB Streams need the latter).
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "shopstream-test",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import pytest

from local import moto_patches
from shopstream import aws

moto_patches.apply()  # what the local stack and the simulation run (tests/unit/test_moto_patches.py)
from shopstream.config import reset_settings  # noqa: E402
from shopstream.publisher import set_publisher  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Settings, clients and the producer are process-wide caches: start every test clean."""
    reset_settings()
    aws.reset_clients()
    set_publisher(None)
    yield
    reset_settings()
    aws.reset_clients()
    set_publisher(None)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """A real Kafka-protocol broker (Tansu) on 127.0.0.1, or KAFKA_BOOTSTRAP_SERVERS if given."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from local.processes import free_port, spawn, stop, wait_for_port
    from local.stack import tansu_binary

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    process = spawn([tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                     "--storage-engine", "memory://tansu/"], log_path=str(log))
    try:
        wait_for_port(port, process, what="Tansu broker")
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)
