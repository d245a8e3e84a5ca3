"""boto3 clients created on first use and reused for the life of the process.

Endpoints follow boto3's own configuration (AWS_ENDPOINT_URL points them at the local
moto server), so nothing here knows whether it runs on AWS or on a laptop.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

_lock = threading.Lock()


_models: Any = None  # botocore's loader of service models, kept across reset_clients()


@cache
def _session() -> Any:
    import boto3
    import botocore.session

    # One session for every client: each new session would load botocore's models again. The
    # loader (files of botocore, read-only once parsed) also outlives a reset: tests start each one
    # with fresh clients and would otherwise parse the same JSON models every time.
    global _models
    core = botocore.session.get_session()
    if _models is not None:
        core.register_component("data_loader", _models)
    session = boto3.session.Session(botocore_session=core)
    _models = core.get_component("data_loader")
    _models.search_paths[:] = dict.fromkeys(_models.search_paths)  # boto3 adds its path each time
    return session


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


def credentials() -> Any:
    """The process's AWS credentials (botocore's, refreshed as it refreshes them): what signs a request
    made outside a client (OTLP spans to X-Ray, shopstream.spans)."""
    return _session().get_credentials()
