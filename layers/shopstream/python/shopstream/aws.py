"""boto3 clients created on first use and reused for the life of the process.

Endpoints follow boto3's own configuration (AWS_ENDPOINT_URL points them at the local
moto server), so nothing here knows whether it runs on AWS or on a laptop.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

_lock = threading.Lock()


@cache
def _session() -> Any:
    import boto3

    # One session for every client: each new session would load botocore's models again.
    return boto3.session.Session()


@cache
def _client(service_name: str) -> Any:
    return _session().client(service_name)


def client(service_name: str) -> Any:
    with _lock:  # creating clients from one session is not thread-safe; using them is
        return _client(service_name)


def reset_clients() -> None:
    with _lock:
        _client.cache_clear()
        _session.cache_clear()
