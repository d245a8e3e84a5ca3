"""The system described as data: topics, event types, services, handlers, routes.

CDK (stacks/) and the local runtime (local/) both iterate over these specs, so what
runs on one machine is what deploys. Nothing here touches AWS or Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from shopstream.event_table import EVENT_ROWS


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention: timedelta
    description: str

    @property
    def retention_ms(self) -> int:
        return int(self.retention.total_seconds() * 1000)


@dataclass(frozen=True)
class EventSpec:
    name: str
    version: str
    topic: str
    key_field: str
    # Where its model is: shopstream.events.<model_module>.<model_name> (shopstream.events.model_of imports it)
    model_module: str
    model_name: str

    @property
    def ref(self) -> tuple[str, str]:
        return (self.name, self.version)


@dataclass(frozen=True)
class HandlerSpec:
    """One Lambda function consuming one topic (one event source mapping, one consumer group)."""

    name: str
    topic: str
    event_types: tuple[str, ...]
    entry: str  # attribute of functions/<service>/consumers.py
    batch_size: int = 100
    max_batching_window_seconds: int = 1
    retry_attempts: int = 3
    max_record_age_seconds: int = 6 * 3600
    # The function's timeout: no invocation, hence none of its writes, outlives it (the analytics' windows are
    # final only after it: audit.logic.close_windows).
    timeout_seconds: int = 60
    # Records of different keys processed at once inside a batch (shopstream/batch.py); 1 = one by one.
    # Worth it wherever a record waits on I/O (DynamoDB, SES, the payment provider): a partition then moves
    # at the pace of its slowest key, not of every record in turn (docs/capacity.md). Everything the handler
    # touches runs on threads: see docs/decisions.md (2026-12-05) for what was checked.
    concurrency: int = 1
    # Records of one key handled in their order (False: no order to keep, every record on its own; the trail,
    # written once per event and read sorted, so one busy key cannot slow its partition).
    ordered: bool = True
    # "audit-archive" (S3 writes), "email" (SES sends), and for personal data (shopstream.personal, NEEDS):
    # "personal-seal" (seal for a customer), "personal-open" (open what was sealed: kms:Decrypt)
    needs: tuple[str, ...] = ()
    # A Powertools idempotency record per eventId (two DynamoDB calls per event): on by default. Off
    # (STATE_GUARDED) where the handler cannot apply an event twice by itself: every write is
    # conditional on a version, a status, a tombstone or a write-once key, and what leaves the table
    # is guarded the same way (the provider's idempotency key after an AUTHORISING or CAPTURING state; an e-mail
    # recorded before it is sent). There the record would repeat what the table knows, at two of the
    # handler's three calls (docs/decisions.md, 2026-11-29). The simulation replays with the records
    # cleared to hold these handlers to it. A new handler gets the record until it is shown to be guarded.
    idempotency: bool = True
    # On the order's critical path (POST /orders -> CONFIRMED): invoked as soon as a record arrives
    # (batching window 0, provisioned pollers sized per environment; docs/capacity.md, latency model).
    critical_path: bool = False

    def __post_init__(self) -> None:
        if self.critical_path and self.max_batching_window_seconds:
            raise ValueError(f"{self.name}: a critical-path handler waits for no batch (window 0)")


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    admin_only: bool = False
    public: bool = False  # no JWT (health only)
    idempotent: bool = False  # a creating POST: honours Idempotency-Key (shopstream.api)
    status: int = 200  # the success status (documented in the OpenAPI; tests hold the handlers to it)
    # Takes waitFor/timeoutSeconds and may wait up to shopstream.long_poll.MAX_TIMEOUT_SECONDS: its function's
    # timeout allows it (stacks/service/api.py), and locally the gateway does the waiting (local/gateway.py).
    long_poll: bool = False


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    entry: str
    every_minutes: int


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    description: str
    writes: tuple[str, ...]  # the topics it publishes to: it publishes every event declared on them
    handlers: tuple[HandlerSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()
    api_entry: str = "handler"  # attribute of functions/<service>/api.py
    api_needs: tuple[str, ...] = ()  # what the API function needs beyond its table (NEEDS)

    @property
    def source(self) -> str:
        return f"{self.name}-service"

    @property
    def takes_idempotency_keys(self) -> bool:
        """A route of its API honours Idempotency-Key: the API keeps responses and binds keys (shopstream.api)."""
        return any(route.idempotent for route in self.routes)

    def handler(self, name: str) -> HandlerSpec:
        for handler in self.handlers:
            if handler.name == name:
                return handler
        raise KeyError(f"{self.name} has no handler {name!r}")

    @property
    def publishes(self) -> tuple[str, ...]:
        """The event types it publishes: those of the topics it writes."""
        return tuple(dict.fromkeys(e.name for e in EVENTS if e.topic in self.writes))

    @property
    def produces_topics(self) -> tuple[str, ...]:
        return tuple(sorted(self.writes))


@dataclass(frozen=True)
class TableSpec:
    """Every service table has the same shape; services choose what goes in the keys."""

    partition_key: str = "pk"
    sort_key: str = "sk"
    indexes: tuple[tuple[str, str, str], ...] = (("gsi1", "gsi1pk", "gsi1sk"),)
    ttl_attribute: str = "ttl"
    stream_view: str = "NEW_IMAGE"  # the outbox relay reads new items only


@dataclass(frozen=True)
class IdempotencyTableSpec:
    partition_key: str = "id"
    ttl_attribute: str = "expiration"


@dataclass(frozen=True)
class KeyStoreSpec:
    """The customer key store (shopstream.personal): one item per customer, no stream (nothing is relayed
    from it) and no point-in-time backups (a backup would keep an erased customer's key)."""

    partition_key: str = "userId"


SERVICE_TABLE = TableSpec()
IDEMPOTENCY_TABLE = IdempotencyTableSpec()
CUSTOMER_KEYS = KeyStoreSpec()

# What a function may need beyond its own table, queue and topics (HandlerSpec.needs, ServiceSpec.api_needs).
PERSONAL_NEEDS = {
    "personal-seal": "read customers' public keys in the key store, to seal personal values for them",
    "personal-open": "open sealed personal values: read the key store and decrypt with the customer-data key",
    "personal-check": "read a customer's key with the function's own items (one batch) and make it a condition of "
                      "a transaction (nothing is sent to a customer erased meanwhile)",
    "customer-keys": "create customers' keys (GenerateDataKey), open, and delete them on erasure",
}
NEEDS = {
    "audit-archive": "write the S3 archive of the audit trail",
    "email": "send e-mail through SES",
    **PERSONAL_NEEDS,
    "identity": "delete the customer's sign-in identity (Cognito) on erasure",
}

_DAY = timedelta(days=1)
TOPICS: tuple[Topic, ...] = (
    Topic("user-events", 12, 30 * _DAY, "User lifecycle: registration, profile changes, deactivation"),
    Topic("catalog-events", 8, 90 * _DAY, "Products: creation, changes, discontinuation"),
    Topic("inventory-events", 16, 7 * _DAY, "Stock levels, reservations and releases"),
    Topic("cart-events", 12, 30 * _DAY, "Shopping carts: creation, changes, abandonment"),
    Topic("order-events", 20, 365 * _DAY, "Order lifecycle"),
    Topic("payment-events", 12, 7 * 365 * _DAY, "Payments: authorisation, capture or void, failure, refund"),
    Topic("shipping-events", 8, 365 * _DAY, "Shipments and deliveries"),
    Topic("notification-events", 4, 30 * _DAY, "Messages sent to customers, and failures"),
    Topic("audit-events", 4, 7 * 365 * _DAY, "Who did what through the API"),
    Topic("analytics-events", 4, 30 * _DAY, "Alerts from complex event processing: fraud, stock-outs, payment spikes"),
)


# Every event version, as its model declares it (shopstream.declarations): the table is generated by `make generate`,
# so the catalog imports no model. Producers emit each type's newest version.
EVENTS: tuple[EventSpec, ...] = tuple(EventSpec(*row) for row in EVENT_ROWS)


def _names(topic: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(e.name for e in EVENTS if e.topic == topic))


STATE_GUARDED: dict[str, object] = {"idempotency": False}  # see HandlerSpec.idempotency
CRITICAL_PATH: dict[str, object] = {"critical_path": True, "max_batching_window_seconds": 0}
# Keys side by side (HandlerSpec.concurrency): every handler waits on DynamoDB (~6 ms a call, 65 µs of CPU a
# record), the notifications on SES too; 16 cuts a topic's partitions ~16x at the design rate (docs/capacity.md).
KEY_PARALLEL: dict[str, object] = {"concurrency": 16}
# The authorisation and the capture wait ~300 ms on the provider: at 16, their topics would need ~60 partitions, at
# 64 ~15 (tools/capacity.py); 64 threads waiting on sockets fit a 512 MB function.
PROVIDER_PARALLEL: dict[str, object] = {"concurrency": 64}


def _handler(name: str, topic: str, *event_types: str, **settings: object) -> HandlerSpec:
    entry = name.replace("-", "_")
    return HandlerSpec(name=name, topic=topic, event_types=event_types or _names(topic), entry=entry,
                       **settings)  # type: ignore[arg-type]


R = RouteSpec
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="user",
        description="Customer profiles",
        writes=("user-events", "audit-events"),
        handlers=(
            # Deletes the erased customer's sign-in identity (their e-mail address in clear), retried until it
            # succeeds; the request only tries it first. No idempotency record: its one effect, AdminDeleteUser,
            # is idempotent (an identity already gone is done), it writes nothing, and a subject is never reused,
            # so a redelivery or a replay changes nothing: the record would cost two DynamoDB calls, guarding nothing.
            _handler("identity-erasure", "user-events", "UserErased", needs=("identity",), idempotency=False),
        ),
        routes=(
            R("POST", "/users", idempotent=True, status=201),
            R("GET", "/users/{userId}"),
            R("PATCH", "/users/{userId}"),
            R("POST", "/users/{userId}/deactivate"),
            R("POST", "/users/{userId}/erasure", status=202),  # the customer themself or an admin
        ),
        api_needs=("customer-keys", "identity"),
    ),
    ServiceSpec(
        name="catalog",
        description="Products and their availability",
        writes=("catalog-events", "audit-events"),
        handlers=(
            _handler(
                "stock-availability",
                "inventory-events",
                "InventoryAdjusted",
                "InventoryReserved",
                "InventoryReleased",
                **STATE_GUARDED, **KEY_PARALLEL,
            ),
        ),
        routes=(
            R("POST", "/products", admin_only=True, idempotent=True, status=201),
            R("GET", "/products"),
            R("GET", "/products/{productId}"),
            R("PATCH", "/products/{productId}", admin_only=True),
            R("POST", "/products/{productId}/discontinue", admin_only=True),
        ),
    ),
    ServiceSpec(
        name="inventory",
        description="Stock levels and reservations",
        writes=("inventory-events", "audit-events"),
        handlers=(
            _handler("product-sync", "catalog-events", "ProductCreated", "ProductDiscontinued", **STATE_GUARDED,
                     **KEY_PARALLEL),
            _handler("order-reservations", "order-events", "OrderCreated", "OrderCancelled", **STATE_GUARDED,
                     **CRITICAL_PATH, **KEY_PARALLEL),
            _handler("payment-outcomes", "payment-events", "PaymentProcessed", "PaymentFailed", **STATE_GUARDED,
                     **KEY_PARALLEL),
        ),
        routes=(
            R("GET", "/inventory/{productId}"),
            R("POST", "/inventory/{productId}/adjustments", admin_only=True, idempotent=True),
        ),
    ),
    ServiceSpec(
        name="cart",
        description="Shopping carts",
        writes=("cart-events", "audit-events"),
        handlers=(
            _handler("product-sync", "catalog-events", "ProductDiscontinued", **STATE_GUARDED, **KEY_PARALLEL),
            _handler("order-checkout", "order-events", "OrderCreated", **STATE_GUARDED, **KEY_PARALLEL),
            _handler("user-sync", "user-events", "UserDeactivated", "UserErased", **STATE_GUARDED, **KEY_PARALLEL),
        ),
        routes=(
            R("POST", "/carts", idempotent=True, status=201),
            R("PUT", "/carts/{cartId}/items"),
            R("GET", "/carts/{cartId}"),
        ),
        schedules=(ScheduleSpec("abandoned-carts", "sweep_abandoned_carts", every_minutes=15),),
    ),
    ServiceSpec(
        name="order",
        description="Orders and the order saga's state",
        writes=("order-events", "audit-events"),
        handlers=(
            _handler("user-replica", "user-events", needs=("personal-seal",), **STATE_GUARDED, **KEY_PARALLEL),
            _handler("product-replica", "catalog-events", **STATE_GUARDED, **KEY_PARALLEL),
            # The order is confirmed by whichever of the reservation and the authorisation comes last.
            _handler("inventory-outcomes", "inventory-events", "InventoryReserved", "InventoryReservationFailed",
                     **STATE_GUARDED, **CRITICAL_PATH, **KEY_PARALLEL),
            _handler("payment-outcomes", "payment-events", "PaymentAuthorised", "PaymentProcessed", "PaymentFailed",
                     "PaymentRefunded", **STATE_GUARDED, **CRITICAL_PATH, **KEY_PARALLEL),
            _handler("shipping-outcomes", "shipping-events", **STATE_GUARDED, **KEY_PARALLEL),
        ),
        routes=(
            R("POST", "/orders", idempotent=True, status=202),
            R("GET", "/orders/{orderId}", long_poll=True),
            R("GET", "/users/{userId}/orders"),
            R("POST", "/orders/{orderId}/cancel", status=202),
        ),
        schedules=(ScheduleSpec("saga-timeouts", "sweep_saga_timeouts", every_minutes=1),),
        api_needs=("personal-open",),  # seals the shipping address; shows it and the name back
    ),
    ServiceSpec(
        name="payment",
        description="Payments through the provider adapter",
        writes=("payment-events",),
        handlers=(
            # The provider is called while a record waits: orders are authorised, captured, voided and refunded
            # side by side. The authorisation (on OrderCreated, beside the reservation) is on the critical path;
            # the capture, after the reservation, is not: the order is confirmed on the reservation and the
            # authorisation.
            _handler("order-payments", "order-events", "OrderCreated", "OrderCancelled", **PROVIDER_PARALLEL,
                     **STATE_GUARDED, **CRITICAL_PATH),
            _handler("inventory-outcomes", "inventory-events", "InventoryReserved", "InventoryReservationFailed",
                     **PROVIDER_PARALLEL, **STATE_GUARDED),
        ),
        routes=(R("GET", "/payments/{paymentId}"),),
    ),
    ServiceSpec(
        name="shipping",
        description="Shipments",
        writes=("shipping-events", "audit-events"),
        handlers=(_handler("order-fulfilment", "order-events", "OrderCreated", "OrderConfirmed", "OrderCancelled",
                           "OrderCancellationRequested", needs=("personal-seal",), **STATE_GUARDED,
                           **KEY_PARALLEL),),
        routes=(
            R("GET", "/shipments/{shipmentId}"),
            R("GET", "/orders/{orderId}/shipment"),
            R("POST", "/shipments/{shipmentId}/dispatch", admin_only=True),
            R("POST", "/shipments/{shipmentId}/deliver", admin_only=True),
        ),
        api_needs=("personal-open",),  # the parcel's address, for the label
    ),
    ServiceSpec(
        name="notification",
        description="Customer notifications",
        writes=("notification-events",),
        handlers=(
            # Every handler that writes to a customer opens their (sealed) address to do so.
            _handler("user-notices", "user-events", "UserRegistered", "UserUpdated", "UserDeactivated", "UserErased",
                     needs=("email", "personal-open", "personal-check"), **STATE_GUARDED, **KEY_PARALLEL),
            _handler("order-notices", "order-events", "OrderConfirmed", "OrderCancelled", "OrderShipped",
                     needs=("email", "personal-open", "personal-check"), **STATE_GUARDED, **KEY_PARALLEL),
            _handler("payment-notices", "payment-events", "PaymentFailed", "PaymentRefunded",
                     needs=("email", "personal-open", "personal-check"), **STATE_GUARDED, **KEY_PARALLEL),
            _handler("shipping-notices", "shipping-events", "ShippingDispatched", "ShippingDelivered",
                     needs=("email", "personal-open", "personal-check"), **STATE_GUARDED, **KEY_PARALLEL),
            _handler("cart-notices", "cart-events", "CartAbandoned",
                     needs=("email", "personal-open", "personal-check"), **STATE_GUARDED, **KEY_PARALLEL),
            _handler("alert-notices", "analytics-events", needs=("email",), **STATE_GUARDED,
                     **KEY_PARALLEL),  # to the admins
        ),
    ),
    ServiceSpec(
        name="audit",
        description="Immutable trail of every event, and real-time analytics (windows, patterns, alerts)",
        writes=("analytics-events",),
        handlers=(
            # No order to keep: write-once per event, read sorted by time (docs/decisions.md, 2026-12-05).
            *(_handler(f"trail-{t.name.removesuffix('-events')}", t.name, needs=("audit-archive",), ordered=False,
                       **STATE_GUARDED, **KEY_PARALLEL)
              for t in TOPICS),
            # Counts and their CloudWatch metrics are guarded by the window's per-event fact.
            _handler("analytics-orders", "order-events", "OrderCreated", "OrderConfirmed", "OrderCancelled",
                     **STATE_GUARDED, **KEY_PARALLEL),
            _handler("analytics-payments", "payment-events", "PaymentProcessed", "PaymentFailed", **STATE_GUARDED,
                     **KEY_PARALLEL),
            _handler("analytics-inventory", "inventory-events", "InventoryAdjusted", "InventoryReserved",
                     "InventoryReleased", **STATE_GUARDED, **KEY_PARALLEL),
        ),
        routes=(
            R("GET", "/audit/{correlationId}", admin_only=True),
            R("GET", "/analytics/live", admin_only=True),
        ),
        # Closes 1-minute windows once final (no batch can still be counting them), and matches the patterns
        # over closed windows (payment failure spikes, stock-out predictions).
        schedules=(ScheduleSpec("analytics-windows", "close_windows", every_minutes=1),),
    ),
)

HEALTH_ROUTE = RouteSpec("GET", "/health", public=True)

# The functions that publish their events right after their commit where an environment turns direct publish
# on (shopstream.direct; cdk.json ``directPublish``): the committers whose events the critical path waits for,
# POST /orders (OrderCreated), the reservation (InventoryReserved) and the payment (PaymentInitiated, and
# PaymentProcessed or PaymentFailed). Each then runs in the VPC, as the relays do (docs/capacity.md, latency). The
# confirmation's own events (order.payment-outcomes) are waited for by nobody on the path: they keep the relay.
DIRECT_PUBLISHERS = frozenset({"order.api", "inventory.order-reservations", "payment.order-payments",
                               "payment.inventory-outcomes"})
DIRECT_PUBLISH_ENV = "SHOPSTREAM_DIRECT_PUBLISH"


# --- look-ups ------------------------------------------------------------------------
@cache
def _topics_by_name() -> dict[str, Topic]:
    return {t.name: t for t in TOPICS}


@cache
def _events_by_ref() -> dict[tuple[str, str], EventSpec]:
    return {e.ref: e for e in EVENTS}


@cache
def _services_by_name() -> dict[str, ServiceSpec]:
    return {s.name: s for s in SERVICES}


def topic(name: str) -> Topic:
    return _topics_by_name()[name]


def event(name: str, version: str = "v1") -> EventSpec:
    return _events_by_ref()[(name, version)]


def latest(name: str) -> EventSpec:
    """The newest version of an event type: what producers emit."""
    return max((e for e in EVENTS if e.name == name), key=lambda e: int(e.version[1:]))


def find_event(name: str, version: str) -> EventSpec | None:
    return _events_by_ref().get((name, version))


def known_event_name(name: str) -> bool:
    return any(ref[0] == name for ref in _events_by_ref())


def service(name: str) -> ServiceSpec:
    return _services_by_name()[name]


def producers_of(event_name: str) -> tuple[str, ...]:
    return tuple(s.name for s in SERVICES if event_name in s.publishes)


def consumers_of(event_name: str) -> tuple[str, ...]:
    """``service.handler`` names that receive the event."""
    return tuple(
        f"{s.name}.{h.name}" for s in SERVICES for h in s.handlers if event_name in h.event_types
    )


def consumer_group_id(service_name: str, handler_name: str) -> str:
    return f"{service_name}-{handler_name}"


def publishes_directly(service_spec: ServiceSpec, handler: HandlerSpec | None = None, *, api: bool = False) -> bool:
    """Whether this function (a consumer's ``handler``, or the service's API) is one of DIRECT_PUBLISHERS."""
    ref = f"{service_spec.name}.{handler.name}" if handler else f"{service_spec.name}.api" if api else None
    return ref in DIRECT_PUBLISHERS


def relays_direct_events(service_spec: ServiceSpec) -> bool:
    """Whether a function of this service publishes directly: its relay is then the fallback for those events."""
    return any(ref.split(".", 1)[0] == service_spec.name for ref in DIRECT_PUBLISHERS)


def function_environment(
    service_spec: ServiceSpec,
    *,
    environment: str,
    table_name: str,
    idempotency_table_name: str,
    bootstrap_servers: str,
    kafka_auth: str,
    handler: HandlerSpec | None = None,
    dlq_url: str | None = None,
    log_level: str = "INFO",
    audit_archive_bucket: str | None = None,
    notification_channel: str = "table",
    customer_keys_table: str | None = None,
    customer_data_key: str | None = None,
    user_pool_id: str | None = None,
    request_fingerprint_key: str | None = None,
    api: bool = False,
    relay: bool = False,
    direct_publish: bool = False,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment variables a function gets, the same on AWS (CDK) and locally (runner).

    ``handler``: a consumer's; ``api``: the service's API function (its ``api_needs``); ``relay``: the service's
    outbox relay. ``direct_publish``: the environment publishes the critical path's events right after their
    commit (DIRECT_PUBLISHERS, and the relays that are their fallback)."""
    env = {
        "POWERTOOLS_SERVICE_NAME": service_spec.name,
        "POWERTOOLS_METRICS_NAMESPACE": "shopstream",
        "POWERTOOLS_LOG_LEVEL": log_level,
        "SHOPSTREAM_ENVIRONMENT": environment,
        "SHOPSTREAM_SERVICE": service_spec.name,
        "SHOPSTREAM_TABLE_NAME": table_name,
        "SHOPSTREAM_IDEMPOTENCY_TABLE_NAME": idempotency_table_name,
        "SHOPSTREAM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "SHOPSTREAM_KAFKA_AUTH": kafka_auth,
        # No pydantic plugins are used: without this, building the first model scans every installed
        # distribution's entry points for one (cold start; docs/decisions.md, 2026-11-29).
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    if handler is not None:
        env["SHOPSTREAM_HANDLER"] = handler.name
    if dlq_url is not None:
        env["SHOPSTREAM_DLQ_URL"] = dlq_url
    needs = handler.needs if handler else service_spec.api_needs if api else ()
    if "audit-archive" in needs and audit_archive_bucket:
        env["SHOPSTREAM_AUDIT_ARCHIVE_BUCKET"] = audit_archive_bucket
    if "email" in needs:
        env["SHOPSTREAM_NOTIFICATION_CHANNEL"] = notification_channel
    if set(needs) & set(PERSONAL_NEEDS) and customer_keys_table:
        env["SHOPSTREAM_CUSTOMER_KEYS_TABLE"] = customer_keys_table
        if customer_data_key and set(needs) & {"personal-open", "customer-keys"}:
            env["SHOPSTREAM_CUSTOMER_DATA_KEY"] = customer_data_key
    if "identity" in needs and user_pool_id:
        env["SHOPSTREAM_USER_POOL_ID"] = user_pool_id
    if api and service_spec.takes_idempotency_keys and request_fingerprint_key:
        env["SHOPSTREAM_REQUEST_FINGERPRINT_KEY"] = request_fingerprint_key
    if direct_publish and (relays_direct_events(service_spec) if relay
                           else publishes_directly(service_spec, handler, api=api)):
        env[DIRECT_PUBLISH_ENV] = "true"
    if extra:
        env.update(extra)
    return env
