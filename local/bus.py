"""All nine services in one process, wired like production but without a broker.

Outbox items are read from each table's DynamoDB stream (moto) and published by the real
relay; published records are appended to in-memory topic partitions; every handler gets them
as ``aws:kafka`` batches through the real consumer runtime, with the partial batch response
honoured (a partition resumes at its first failed offset). Used by integration tests and
benchmarks; the broker-backed runner (local/mapping.py) keeps the same semantics.

With ``partial_batch_response=False`` the mappings behave as Lambda's Kafka mappings in on-demand mode
(docs/decisions.md, 2026-12-05): a response naming failed records is ignored and the whole batch is
committed; only a function error delivers the batch again, whole, and a batch is never given up. The
consumers are configured for it (Settings.partial_batch_response), as the stacks configure them there.

With ``direct_publish`` the critical path's committers also publish their events right after the commit
(shopstream.direct) through the process's publisher, whose records join the topics after each call; the relays
hold a ``direct`` item back until its grace has passed on the bus's logical clock (``now``: every relay poll and
delivery is a tick), so a seed replays exactly.
"""

from __future__ import annotations

import importlib
import json
import random
import zlib
from dataclasses import dataclass, field
from typing import Any

from local import entry_points, moto_patches, naming
from local.context import LocalLambdaContext
from local.destinations import GiveUp, failed_batch_destination
from local.http_events import claims_for, http_event
from local.mapping import on_failure_record
from local.relay import StreamRelay
from local.streams import StreamReader
from shopstream import aws, catalog, names, transaction
from shopstream.batch import GroupRunner
from shopstream.config import Settings, override_settings
from shopstream.consumer import EventConsumer
from shopstream.publisher import InMemoryPublisher, installed_publisher
from shopstream.relay import OutboxRelay
from shopstream.wire import OutgoingRecord, msk_event, msk_record

TICK_SECONDS = 0.05  # the bus's logical clock: each relay poll and each delivery moves it on this much


def partition_for(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


@dataclass
class _Cursor:
    next_offset: int = 0
    failures: int = 0


@dataclass
class InProcessBus:
    queue_urls: dict[str, str]
    duplicate: bool = False  # deliver every batch twice
    shuffle: bool = False  # interleave partitions randomly (order within a partition is kept)
    seed: int = 7
    batch_size: int = 10
    log: dict[str, dict[int, list[OutgoingRecord]]] = field(default_factory=dict)
    cursors: dict[tuple[str, str, int], _Cursor] = field(default_factory=dict)
    relays: dict[str, StreamRelay] = field(default_factory=dict)  # service -> its stream's relay
    invocations: int = 0
    # per service: the table's commit count when its stream was last read to the end
    relayed_at: dict[str, int] = field(default_factory=dict)
    # As Lambda's mappings once their retries are spent (None: never, a test wants to see the failure): a
    # handler's batch after this many failed deliveries, a relay's after this many failed polls, is given up
    # into the service's failed-batch bucket (local/destinations.py) and the partition or shard moves on.
    give_up_after: int | None = None
    given_up: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (service, owner, record)
    # (topic, partition) -> the oldest offset the topic still keeps (the simulation passes retention)
    log_start: dict[tuple[str, int], int] = field(default_factory=dict)
    # False: the handlers' mappings ignore a partial batch response and never give a batch up (on-demand mode).
    partial_batch_response: bool = True
    # How a batch's key groups run (shopstream.batch): None, one record at a time; the simulation passes a seeded
    # interleaving, the orders the catalog's concurrency allows on AWS, on this one thread.
    run_groups: GroupRunner | None = None
    direct_publish: bool = False  # as an environment with cdk.json's directPublish on
    ticks: int = 0  # relay polls and deliveries so far: the logical clock (``now``)
    _settings: dict[tuple[str, str | None], Settings] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Unpatched moto replaces a table's stream shard when a transaction fails, which strands
        # the relays' stream iterators: every user of the bus needs the patch, not only pytest.
        moto_patches.apply()
        self.random = random.Random(self.seed)
        # Modules, not functions: a consumer is looked up at each delivery (bench/aws_calls.py wraps them).
        self.consumer_modules = {s.name: entry_points.module(s.name, names.CONSUMERS_MODULE)
                                 for s in catalog.SERVICES if s.handlers}
        self.apis = {s.name: entry_points.api(s.name) for s in catalog.SERVICES if s.routes}
        # No threads: a seed must replay the same run, and moto in-process is not thread-safe. Key-parallel
        # batches run on threads in the local runtime (moto behind its lock) and in tests/unit/test_consumer.py.
        for module in self.consumer_modules.values():
            for consumer in vars(module).values():
                if isinstance(consumer, EventConsumer):
                    consumer.concurrency = 1 if self.run_groups is None else consumer.spec.concurrency
                    consumer.run_groups = self.run_groups
        self.relay_publisher = InMemoryPublisher()
        self.relay = OutboxRelay(self.relay_publisher, hold_back=True)
        for topic in catalog.TOPICS:
            self.log[topic.name] = {p: [] for p in range(topic.partitions)}

    # --- configuration ------------------------------------------------------------------
    def settings_for(self, service: str, handler: str | None = None) -> Settings:
        key = (service, handler)
        if key not in self._settings:  # built once: reading settings costs more than a DynamoDB call
            settings = naming.function_settings(
                service, handler, dlq_url=self.queue_urls[naming.dlq(service, handler)] if handler else None,
                direct_publish=self.direct_publish)
            if handler and not self.partial_batch_response:
                settings = settings.model_copy(update={"partial_batch_response": False})
            self._settings[key] = settings
        return self._settings[key]

    def relay_settings(self, service: str) -> Settings:
        key = (service, names.RELAY)
        if key not in self._settings:
            self._settings[key] = naming.function_settings(service, relay=True, direct_publish=self.direct_publish)
        return self._settings[key]

    def now(self) -> float:
        """The logical clock, in seconds (shopstream.direct's grace is measured on it: ``direct.set_clock``)."""
        return self.ticks * TICK_SECONDS

    def _collect_direct(self) -> None:
        """What the functions published directly (the process's publisher, when it keeps records) joins the topics."""
        if self.direct_publish:
            publisher = installed_publisher()
            if publisher is not None and hasattr(publisher, "records"):
                self.append_published(publisher)

    # --- the API ------------------------------------------------------------------------
    def call(self, service: str, method: str, path: str, *, user: str = "u-1", admin: bool = False,
             body: Any = None, correlation_id: str | None = None) -> tuple[int, Any]:
        status, answer, _ = self.request(service, method, path, user=user, admin=admin, body=body,
                                         correlation_id=correlation_id)
        return status, answer

    def request(self, service: str, method: str, path: str, *, user: str = "u-1", admin: bool = False,
                body: Any = None, correlation_id: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        """The API function's answer: status, body and headers."""
        sent = {**({"x-correlation-id": correlation_id} if correlation_id else {}), **(headers or {})}
        event = http_event(method, path, body=body, claims=claims_for(user, admin=admin), headers=sent)
        try:
            with override_settings(self.settings_for(service)):
                response = self.apis[service](event, LocalLambdaContext(function_name=f"{service}-api"))
        finally:
            self._collect_direct()
        answer = json.loads(response["body"]) if response.get("body") else None
        return response["statusCode"], answer, dict(response.get("headers") or {})

    def run_schedule(self, service: str, entry: str, *args: Any) -> Any:
        try:
            with override_settings(self.settings_for(service)):
                logic = importlib.import_module(f"{service}.logic")
                return getattr(logic, entry)(*args)
        finally:
            self._collect_direct()

    # --- moving events ---------------------------------------------------------------------
    def _stream_relay(self, service: str) -> StreamRelay:
        if service not in self.relays:
            arn = aws.client("dynamodb").describe_table(TableName=naming.table(service))["Table"]["LatestStreamArn"]
            give_up = self._give_up(service, names.RELAY) if self.give_up_after is not None else None
            self.relays[service] = StreamRelay(service, StreamReader(aws.client("dynamodbstreams"), arn),
                                               self.relay_settings(service), retry_attempts=self.give_up_after,
                                               give_up=give_up)
        return self.relays[service]

    def relay_step(self, service: str, publisher: Any | None = None) -> int:
        """One poll of a service's stream through the real relay (local/relay.py); what it publishes
        lands on the in-memory topics."""
        self.ticks += 1
        table = naming.table(service)
        if self.relayed_at.get(service) == transaction.commits[table]:
            return 0  # nothing was written since the stream was read to its end
        committed = transaction.commits[table]
        moved, complete = self._stream_relay(service).poll(
            OutboxRelay(publisher, hold_back=True) if publisher is not None else self.relay)
        if complete:
            self.relayed_at[service] = committed
        self.append_published(publisher or self.relay_publisher)
        return moved

    def append_published(self, publisher: Any) -> None:
        for record in publisher.records:
            topic = catalog.topic(record.topic)
            self.log[record.topic][partition_for(record.key, topic.partitions)].append(record)
        publisher.records.clear()

    def _relay_all(self) -> int:
        return sum(self.relay_step(spec.name) for spec in catalog.SERVICES)

    def inject(self, topic: str, key: str, value: bytes,
               headers: tuple[tuple[str, bytes], ...] = ()) -> tuple[int, int]:
        """Put a raw record on a topic (poison, duplicates): returns (partition, offset)."""
        partition = partition_for(key, catalog.topic(topic).partitions)
        records = self.log[topic][partition]
        records.append(OutgoingRecord(topic=topic, key=key, value=value, headers=headers, event_id="injected"))
        return partition, len(records) - 1

    def pending(self) -> list[tuple[catalog.ServiceSpec, catalog.HandlerSpec, int]]:
        """(service, handler, partition) with records not yet consumed."""
        work = []
        for spec in catalog.SERVICES:
            for handler in spec.handlers:
                for partition, records in self.log[handler.topic].items():
                    cursor = self.cursors.setdefault((spec.name, handler.name, partition), _Cursor())
                    if cursor.next_offset < len(records):
                        work.append((spec, handler, partition))
        return work

    def deliver_step(self, spec: catalog.ServiceSpec, handler: catalog.HandlerSpec, partition: int, *,
                     batch_size: int | None = None, times: int = 1, context: Any = None) -> int:
        """One invocation of a handler's mapping on one partition (``times`` > 1: the same batch
        delivered again, as after a lost response). The partial batch response is honoured, unless the
        bus's mappings do not take one: then only a function error delivers the batch again."""
        cursor = self.cursors.setdefault((spec.name, handler.name, partition), _Cursor())
        records = self.log[handler.topic][partition]
        start = cursor.next_offset
        batch = [msk_record(topic=handler.topic, partition=partition, offset=offset, key=r.key.encode(),
                            value=r.value, headers=list(r.headers))
                 for offset, r in enumerate(records[start:start + (batch_size or self.batch_size)], start=start)]
        self.ticks += 1
        if not batch:
            return 0
        consumer = getattr(self.consumer_modules[spec.name], handler.entry)
        with override_settings(self.settings_for(spec.name, handler.name)):
            for _ in range(times):
                self.invocations += 1
                try:
                    response = consumer(msk_event(batch), context or LocalLambdaContext(
                        function_name=f"{spec.name}-{handler.name}"))
                    if not self.partial_batch_response:
                        response = {"batchItemFailures": []}  # ignored: every offset of the batch is committed
                except Exception:
                    # A function error (Powertools raises when every record failed): Lambda
                    # retries the whole batch.
                    response = {"batchItemFailures": [{"itemIdentifier": {"offset": start}}]}
                finally:
                    self._collect_direct()
        failed = [f["itemIdentifier"]["offset"] for f in response["batchItemFailures"]]
        if failed:
            cursor.next_offset = min(failed)
            cursor.failures += 1
            give_up_after = self.give_up_after if self.partial_batch_response else None  # on-demand: never
            if give_up_after is not None and cursor.failures > give_up_after:
                rest = [r for r in batch if r["offset"] >= min(failed)]
                self._give_up(spec.name, handler.name)(on_failure_record(
                    function=f"{spec.name}-{handler.name}", records=rest, condition="RetryAttemptsExhausted",
                    error="Unhandled", attempts=cursor.failures), f"{handler.topic}-{partition}")
                cursor.next_offset, cursor.failures = start + len(batch), 0
            elif cursor.failures > handler.retry_attempts * 10:
                raise RuntimeError(f"{spec.name}.{handler.name} keeps failing at offset {min(failed)}")
        else:
            cursor.next_offset = start + len(batch)
            cursor.failures = 0
        return len(batch)

    def _give_up(self, service: str, owner: str) -> GiveUp:
        destination = failed_batch_destination(aws.client, service, owner)

        def give_up(record: dict[str, Any], shard: str) -> None:
            self.given_up.append((service, owner, record))
            destination(record, shard)

        return give_up

    def _deliver_all(self) -> int:
        work = self.pending()
        if self.shuffle:
            self.random.shuffle(work)
        return sum(self.deliver_step(spec, handler, partition, times=2 if self.duplicate else 1)
                   for spec, handler, partition in work)

    def pump(self, max_rounds: int = 500) -> int:
        """Move events until nothing is left to relay or deliver. Returns the rounds taken."""
        for round_number in range(max_rounds):
            moved = self._relay_all()
            delivered = self._deliver_all()
            if not moved and not delivered:
                return round_number
        raise RuntimeError("the system did not settle")

    def events(self, topic: str) -> list[dict[str, Any]]:
        out = []
        for records in self.log[topic].values():
            for r in records:
                try:
                    out.append(json.loads(r.value))
                except ValueError:
                    continue
        return out
