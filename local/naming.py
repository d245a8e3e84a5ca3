"""Names of the local resources. On AWS, CloudFormation names them and CDK passes them in."""

from __future__ import annotations

from shopstream import catalog

ENVIRONMENT = "local"
PREFIX = f"shopstream-{ENVIRONMENT}"
AUDIT_ARCHIVE_BUCKET = f"{PREFIX}-audit-archive"


def table(service: str) -> str:
    return f"{PREFIX}-{service}"


def idempotency_table(service: str) -> str:
    return f"{PREFIX}-{service}-idempotency"


def dlq(service: str, handler: str) -> str:
    return f"{PREFIX}-{service}-{handler}-dlq"


def relay_dlq(service: str) -> str:
    return f"{PREFIX}-{service}-relay-dlq"


def all_queues() -> list[str]:
    names = [dlq(s.name, h.name) for s in catalog.SERVICES for h in s.handlers]
    return names + [relay_dlq(s.name) for s in catalog.SERVICES]
