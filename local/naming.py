"""Names of the local resources. On AWS, CloudFormation names them and CDK passes them in."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from shopstream import catalog, names
from shopstream.config import Settings, settings_from
from stacks import config as stack_config

CONSOLE_TOKEN_FILE = Path(".local") / "console-token"  # where `make local` writes this run's console token

ENVIRONMENT = "local"
PREFIX = names.prefix(ENVIRONMENT)
REGION = "eu-west-1"  # the local stack's (moto's) region, and its account moto's default
ACCOUNT = "123456789012"
AUDIT_ARCHIVE_BUCKET = names.audit_archive_bucket(PREFIX, ACCOUNT, REGION)
CUSTOMER_KEYS_TABLE = names.customer_keys_table(PREFIX)
CUSTOMER_DATA_KEY = names.customer_data_key_alias(PREFIX)  # KMS takes the alias where AWS gets the key's ARN
REQUEST_FINGERPRINT_KEY = names.request_fingerprint_key_alias(PREFIX)  # likewise


def table(service: str) -> str:
    return names.table(PREFIX, service)


def idempotency_table(service: str) -> str:
    return names.idempotency_table(PREFIX, service)


def dlq(service: str, handler: str) -> str:
    return names.dead_letter_queue(PREFIX, service, handler)


def relay_dlq(service: str) -> str:
    return names.dead_letter_queue(PREFIX, service, names.RELAY)


def failed_batches_bucket(service: str) -> str:
    """Where the service's mappings give up their batches (shopstream.failed_batches); on AWS CloudFormation
    names it, and the dead-letter message (an S3 notification) names it to whoever reads it."""
    return f"{PREFIX}-{service}-failed-batches"


def mapping_id(service: str, owner: str) -> str:
    """A mapping's id, as Lambda gives each event source mapping a UUID: a handler's (its name) or the
    service's relay (``relay``). Stable, so a restarted runtime writes under the same prefix."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{PREFIX}/{service}/{owner}"))


def function_settings(service: str, handler: str | None = None, *, bootstrap_servers: str = "",
                      dlq_url: str | None = None, relay: bool = False, direct_publish: bool = False) -> Settings:
    """What a function reads from the environment CDK gives it, with the local resource names.

    The one place the local runner, the in-process bus and the operations CLI get a function's
    settings from (through the same ``function_environment`` the stacks use).
    Without a handler these are the API's settings (a schedule shares them locally), or with ``relay`` the
    outbox relay's. ``direct_publish``: as an environment with cdk.json's ``directPublish`` on.
    """
    spec = catalog.service(service)
    environment = catalog.function_environment(
        spec, environment=ENVIRONMENT, table_name=table(service), idempotency_table_name=idempotency_table(service),
        bootstrap_servers=bootstrap_servers, kafka_auth="none", handler=spec.handler(handler) if handler else None,
        dlq_url=dlq_url, audit_archive_bucket=AUDIT_ARCHIVE_BUCKET, notification_channel="table",
        customer_keys_table=CUSTOMER_KEYS_TABLE, customer_data_key=CUSTOMER_DATA_KEY,
        request_fingerprint_key=REQUEST_FINGERPRINT_KEY, api=handler is None and not relay, relay=relay,
        direct_publish=direct_publish)
    return settings_from({**environment, "AWS_REGION": "eu-west-1"})


def all_queues() -> list[str]:
    names = [dlq(s.name, h.name) for s in catalog.SERVICES for h in s.handlers]
    return names + [relay_dlq(s.name) for s in catalog.SERVICES if s.publishes]


def _dev() -> Any:
    environments = json.loads((Path(__file__).resolve().parents[1] / "cdk.json").read_text())["context"]["environments"]
    return stack_config.load(environments, "dev")


def dev_partitions() -> dict[str, int]:
    """Each topic's partitions as the dev environment has them (cdk.json), for a local runtime (dev on one machine)
    to create. Per partition, a local run pays a broker fetch per consumer and poll, and the trail an archive object
    per batch: a closed loop of ten clients settled 4.5 orders/s at the catalog's 120 partitions, 6.0 at dev's 20 (one
    run each, docs/decisions.md, 2026-12-05)."""
    dev = _dev()
    return {topic.name: dev.partition_count(topic.name) for topic in catalog.TOPICS}


def use_dev_service_settings() -> dict[str, str]:
    """The services' per-environment settings as the dev environment has them (cdk.json), for a local
    runtime (dev on one machine) to run with, unless the environment says otherwise. Tests that drive
    the handlers in process keep the code's defaults (which exercise more: e.g. several stock counters)."""
    dev = _dev()
    wanted = {key: value for spec in catalog.SERVICES for key, value in dev.service_settings(spec.name).items()}
    for key, value in wanted.items():
        os.environ.setdefault(key, value)
    return wanted
