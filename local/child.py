"""``python -m local`` (what ``make local`` runs) in a child process on free ports: for end-to-end tests and benches."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from local.client import ApiClient
from local.processes import free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class LocalProcess:
    process: subprocess.Popen
    client: ApiClient
    ports: dict[str, int]
    env: dict[str, str]
    console_token: str  # this run's, from the file `make local` writes (local/console.py)


@contextmanager
def local_process(workdir: Path, *, healthy_within: float) -> Iterator[LocalProcess]:
    """Started in ``workdir`` (its logs in local.out), healthy, and stopped afterwards."""
    ports = {"kafka": free_port(), "aws": free_port(), "api": free_port()}
    env = {**os.environ, "SHOPSTREAM_LOCAL_KAFKA_PORT": str(ports["kafka"]),
           "SHOPSTREAM_LOCAL_AWS_PORT": str(ports["aws"]), "SHOPSTREAM_LOCAL_API_PORT": str(ports["api"]),
           "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}"}
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "AWS_ENDPOINT_URL", "POWERTOOLS_METRICS_DISABLED"):
        env.pop(name, None)
    log = (workdir / "local.out").open("w")
    process = subprocess.Popen([sys.executable, "-m", "local"], cwd=workdir, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    client = ApiClient(f"http://127.0.0.1:{ports['api']}", secret_path=workdir / ".local" / "jwt-secret")
    try:
        client.wait_until(lambda: process.poll() is not None or client.healthy(), timeout=healthy_within,
                          interval=0.5)
        assert process.poll() is None, (workdir / "local.out").read_text()[-3000:]
        token_file = workdir / ".local" / "console-token"
        client.wait_until(token_file.exists, timeout=10)
        yield LocalProcess(process, client, ports, env, token_file.read_text().strip())
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
