"""boto3 clients created on first use and reused for the life of the process.

Endpoints follow boto3's own configuration (AWS_ENDPOINT_URL points them at the local
moto server), so nothing here knows whether it runs on AWS or on a laptop.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service_name: str) -> Any:
    import boto3

    return boto3.session.Session().client(service_name)


def reset_clients() -> None:
    client.cache_clear()
