"""``make local``'s runtime: comes up with every catalog resource and stops leaving nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local import naming
from local.processes import free_port
from local.stack import _listening
from shopstream import catalog

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.broker


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.fixture
def running_stack(tmp_path):
    kafka_port, aws_port = free_port(), free_port()
    env = {**os.environ, "SHOPSTREAM_LOCAL_KAFKA_PORT": str(kafka_port), "SHOPSTREAM_LOCAL_AWS_PORT": str(aws_port),
           "SHOPSTREAM_LOCAL_API_PORT": str(free_port()),
           "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}"}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    process = subprocess.Popen([sys.executable, "-m", "local"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None  # a pipe
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    assert "shopstream local stack is up" in "".join(lines), "".join(lines)
    yield process, kafka_port, aws_port
    if process.poll() is None:
        process.kill()


def test_local_stack_provisions_the_catalog_and_stops_cleanly(running_stack):
    import boto3
    from confluent_kafka.admin import AdminClient, ConfigResource

    process, kafka_port, aws_port = running_stack
    children = _children(process.pid)
    assert len(children) == 1  # the broker (moto runs in the runtime's process, serving HTTP on aws_port)

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{kafka_port}"})
    topics = admin.list_topics(timeout=10).topics
    dev = naming.dev_partitions()  # a local runtime is dev on one machine: dev's partitions, not the catalog's
    assert dev != {topic.name: topic.partitions for topic in catalog.TOPICS}
    for topic in catalog.TOPICS:
        assert len(topics[topic.name].partitions) == dev[topic.name]
    resource = ConfigResource("topic", "payment-events")
    config = admin.describe_configs([resource])[resource].result()
    assert config["retention.ms"].value == str(catalog.topic("payment-events").retention_ms)

    session = boto3.session.Session(region_name="eu-west-1", aws_access_key_id="local", aws_secret_access_key="local")
    endpoint = f"http://127.0.0.1:{aws_port}"
    tables = set(session.client("dynamodb", endpoint_url=endpoint).list_tables()["TableNames"])
    assert {naming.table(s.name) for s in catalog.SERVICES} <= tables
    assert {naming.idempotency_table(s.name) for s in catalog.SERVICES} <= tables
    queues = session.client("sqs", endpoint_url=endpoint).list_queues(MaxResults=1000)["QueueUrls"]
    assert len(queues) == len(naming.all_queues())

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "stopped" in output
    assert not any(_alive(pid) for pid in children)
    assert not _listening(kafka_port) and not _listening(aws_port)
