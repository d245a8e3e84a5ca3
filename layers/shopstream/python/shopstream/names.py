"""The names of deployed things, one rule each, for the stacks (stacks/), the local stack (local/)
and the operator's commands (local/ops.py), so that each finds by name what another created.
"""

from __future__ import annotations

PROJECT = "shopstream"
RELAY = "relay"  # the outbox relay's place among a service's handlers: ``<service>.relay``
# The modules of a service's package (functions/<service>/) that Lambda loads, one per kind of
# function, so that each function imports only what it runs: a consumer never loads the HTTP layer,
# the API never the batch machinery (docs/decisions.md, 2026-11-29).
API_MODULE = "api"  # the HTTP API: ServiceSpec.api_entry
CONSUMERS_MODULE = "consumers"  # the event consumers: HandlerSpec.entry
SCHEDULES_MODULE = "schedules"  # the scheduled functions: ScheduleSpec.entry
API_FUNCTION = "Api"  # a service's API function's construct name (names.function's ``construct_name``)
TABLE_NAME_OUTPUT = "TableName"  # the service stack's output naming its table (CloudFormation names the table)
SHARED_STACKS = ("network", "messaging", "platform")  # besides one stack per service: ``<prefix>-<name>``


def prefix(environment: str) -> str:
    """``shopstream-<environment>``: the start of every name in that environment."""
    return f"{PROJECT}-{environment}"


def construct(entry: str) -> str:
    """A function's construct name from its entry point: ``order_reservations`` -> ``OrderReservations``."""
    return entry.title().replace("_", "")


def entry_point(service: str, module: str, attribute: str) -> str:
    """A function's handler setting, where Lambda (and the local runtime) finds it:
    ``order.consumers.user_replica``."""
    return f"{service}.{module}.{attribute}"


def function(env_prefix: str, service: str, construct_name: str) -> str:
    return f"{env_prefix}-{service}-{construct_name}"


def dead_letter_queue(env_prefix: str, service: str, owner: str) -> str:
    """The DLQ of a handler (its name), of the relay (``relay``) or of a schedule (its name)."""
    return f"{env_prefix}-{service}-{owner}-dlq"


def service_stack(env_prefix: str, service: str) -> str:
    """A service's stack, and a shared one's (SHARED_STACKS)."""
    return f"{env_prefix}-{service}"


def audit_archive_bucket(env_prefix: str, account: str, region: str) -> str:
    """The audit archive's bucket: deterministic, so services name it without a cross-stack reference (account and
    region may be CloudFormation's tokens)."""
    return f"{env_prefix}-audit-archive-{account}-{region}"


def table(env_prefix: str, service: str) -> str:
    """The local table name; on AWS CloudFormation names tables and the service stack outputs it."""
    return f"{env_prefix}-{service}"


def idempotency_table(env_prefix: str, service: str) -> str:
    return f"{env_prefix}-{service}-idempotency"


def customer_keys_table(env_prefix: str) -> str:
    """The customer key store (shopstream.personal): one wrapped key per customer, deleted on erasure."""
    return f"{env_prefix}-customer-keys"


def customer_data_key_alias(env_prefix: str) -> str:
    """The KMS key that wraps every customer's key."""
    return f"alias/{env_prefix}-customer-data"


def request_fingerprint_key_alias(env_prefix: str) -> str:
    """The KMS HMAC key that fingerprints request bodies for their Idempotency-Key (shopstream.key_binding)."""
    return f"alias/{env_prefix}-request-fingerprint"
