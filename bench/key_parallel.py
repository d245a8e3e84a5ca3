"""Key-ordered parallelism inside a batch: wall time of one batch, one record at a time against
keys side by side (shopstream.batch.KeyOrderedBatchProcessor under the consumer runtime).

1. A handler that waits 50 ms per record (an I/O call), 64 records over 1, 4, 16 and 64 keys,
   concurrency 1 against 16. Target: at least 8x at 16 keys. One key cannot go faster: its
   records stay in order.
2. A row per kind of handler, through the consumer runtime under the handler's own catalog entry (its
   concurrency, its order), on one 100-record batch of 100 keys: serial against the catalog's concurrency.
   Each record waits what the capacity model says the handler waits (tools/capacity.py: its DynamoDB calls
   per event, SES, the provider): SES-bound (a fake sender sleeping SES_MS), DynamoDB-bound (a fake store
   sleeping DYNAMODB_MS per call: moto answers one request at a time, local/moto_server.py, so through moto
   no key-parallel handler could show what DynamoDB gives on AWS), provider-bound (PROVIDER_MS).
3. The payment service's own charge handler (payment.inventory-outcomes) through the in-process
   bus with moto, the simulated provider answering in BENCH_PROVIDER_MS (300 ms, a real
   provider's round trip): the time the handler holds its partitions, serial against the
   catalog's concurrency.
"""

from __future__ import annotations

import os
import time
from typing import Any

from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from bench.aws_calls import boto3_client, in_process_aws_environment
from bench.consumer_cpu import InMemoryIdempotency, NoDeadLetters
from local import provision
from local.bus import InProcessBus
from local.context import LocalLambdaContext
from local.moto_server import _serialize_in_process_calls
from local.samples import batch, kafka_record_of, product_created, sample_data
from local.shop import Shop
from shopstream import aws, catalog, config
from shopstream.consumer import EventConsumer
from shopstream.envelope import event_from_command
from tools import capacity

RECORDS = 64
WAIT_MS = 50
PARALLEL = 16
ORDERS = int(os.environ.get("BENCH_PAYMENT_ORDERS", 96))
PROVIDER_MS = int(os.environ.get("BENCH_PROVIDER_MS", 300))


def synthetic() -> list[tuple[int, float, float]]:
    """(keys, serial seconds, parallel seconds) for one 64-record batch."""
    def wait(_inbound: Any) -> None:
        time.sleep(WAIT_MS / 1000)

    rows = []
    for keys in (1, 4, 16, 64):
        events = [product_created(f"p-{n % keys}") for n in range(RECORDS)]
        records = [kafka_record_of(e, partition=0, offset=n) for n, e in enumerate(events)]
        timings = []
        for concurrency in (1, PARALLEL):
            consumer = EventConsumer("order", "product-replica", wait, dead_letters=NoDeadLetters(),
                                     persistence_store=InMemoryIdempotency(), idempotent=True,
                                     concurrency=concurrency)
            started = time.perf_counter()
            response = consumer(batch(*records), LocalLambdaContext())
            timings.append(time.perf_counter() - started)
            assert response == {"batchItemFailures": []}, response
        rows.append((keys, timings[0], timings[1]))
    return rows


# (handler, the event type of its batch, what it waits on), one per kind of handler
KINDS = (("notification.order-notices", "OrderConfirmed", "SES"),
         ("audit.trail-order", "OrderConfirmed", "DynamoDB"),
         ("order.payment-outcomes", "PaymentProcessed", "DynamoDB"),
         ("inventory.order-reservations", "OrderCreated", "DynamoDB"),
         ("shipping.order-fulfilment", "OrderConfirmed", "DynamoDB"),
         ("payment.inventory-outcomes", "InventoryReserved", "provider"))
KIND_RECORDS = 100


class SleepingStore:
    """One DynamoDB call: DYNAMODB_MS of waiting, as on AWS, whoever else is calling."""

    def call(self) -> None:
        time.sleep(capacity.DYNAMODB_MS / 1000)


class SleepingSender:
    def send(self, **_: Any) -> None:
        time.sleep(capacity.SES_MS / 1000)


def _waits(ref: str) -> tuple[str, Any]:
    """What one record of ``ref`` waits on (tools/capacity.py), as a description and a handler function."""
    service, name = ref.split(".")
    spec = catalog.service(service).handler(name)
    calls = capacity.calls_per_event(ref)[0]
    store, sender = SleepingStore(), SleepingSender()
    email, provider = "email" in spec.needs, ref in capacity.WAITS_ON_PROVIDER
    parts = [f"{calls:g} x {capacity.DYNAMODB_MS:g} ms DynamoDB"]
    parts += [f"{capacity.SES_MS:g} ms SES"] if email else []
    parts += [f"{PROVIDER_MS} ms provider"] if provider else []

    def handle(_inbound: Any) -> None:
        for _ in range(int(calls)):
            store.call()
        if calls % 1:  # the measured fraction of a call
            time.sleep(calls % 1 * capacity.DYNAMODB_MS / 1000)
        if email:
            sender.send(message_id="m", to="a@example.com", subject="s", body="b")
        if provider:
            time.sleep(PROVIDER_MS / 1000)

    return " + ".join(parts), handle


def kinds() -> list[tuple[str, str, str, float, int, float]]:
    """(handler, kind, waits per record, serial seconds, catalog concurrency, seconds at it) for one batch of
    KIND_RECORDS records of as many keys."""
    rows = []
    for ref, event_type, kind in KINDS:
        service, name = ref.split(".")
        spec = catalog.service(service).handler(name)
        key_field = catalog.event(event_type).key_field
        events = [event_from_command(event_type=event_type, data={**sample_data(event_type), key_field: f"k-{n}"},
                                     service=catalog.producers_of(event_type)[0], correlation_id=f"c-{n}")
                  for n in range(KIND_RECORDS)]
        records = [kafka_record_of(e, partition=0, offset=n) for n, e in enumerate(events)]
        waits, handle = _waits(ref)
        timings = []
        for concurrency in (1, spec.concurrency):
            consumer = EventConsumer(service, name, handle, dead_letters=NoDeadLetters(), idempotent=False,
                                     concurrency=concurrency)
            started = time.perf_counter()
            response = consumer(batch(*records), LocalLambdaContext())
            timings.append(time.perf_counter() - started)
            assert response == {"batchItemFailures": []}, response
        rows.append((ref, kind, waits, timings[0], spec.concurrency, timings[1]))
    return rows


def payment(concurrency: int | None) -> tuple[float, int, int]:
    """(seconds in payment.inventory-outcomes, events it took, orders confirmed) for ORDERS orders;
    ``concurrency`` None: what the catalog says."""
    os.environ["SHOPSTREAM_PAYMENT_SIMULATOR_LATENCY_MS"] = str(PROVIDER_MS)
    config._service_settings.clear()
    _serialize_in_process_calls(BotocoreStubber)  # key-parallel handlers share moto: one request at a time
    with mock_aws():
        aws.reset_clients()
        bus = InProcessBus(queue_urls=provision.create_aws_resources(boto3_client, "eu-west-1"), batch_size=100)
        spec = catalog.service("payment").handler("inventory-outcomes")
        consumer = getattr(bus.consumer_modules["payment"], spec.entry)
        assert isinstance(consumer, EventConsumer)
        consumer.concurrency = spec.concurrency if concurrency is None else concurrency
        spent = [0.0, 0]

        def timed(event: dict[str, Any], context: Any, _run: Any = consumer.__call__) -> Any:
            started = time.perf_counter()
            try:
                return _run(event, context)
            finally:
                spent[0] += time.perf_counter() - started
                spent[1] += sum(len(records) for records in event["records"].values())

        setattr(bus.consumer_modules["payment"], spec.entry, lambda event, context: timed(event, context))
        try:
            shop = Shop(bus)
            users = [f"bench-buyer-{n}" for n in range(16)]
            for user in users:
                shop.register(user)
            product = shop.product("BENCH-PAY", 1000, stock=ORDERS)
            bus.pump()
            orders = [shop.order(users[n % len(users)], {product: 1}) for n in range(ORDERS)]
            bus.pump()
            confirmed = sum(shop.get_order(order)["status"] == "CONFIRMED" for order in orders)
        finally:
            setattr(bus.consumer_modules["payment"], spec.entry, consumer)
    return spent[0], int(spent[1]), confirmed


def main() -> None:
    in_process_aws_environment()
    print(f"Synthetic: {RECORDS} records in one batch, each waiting {WAIT_MS} ms; concurrency 1 against {PARALLEL}.\n")
    print("| keys in the batch | one at a time | keys side by side | speed-up |")
    print("|---|---|---|---|")
    for keys, serial, parallel in synthetic():
        print(f"| {keys} | {serial:.2f} s | {parallel:.2f} s | {serial / parallel:.1f}x |")
    print(f"\nEach kind of handler: one batch of {KIND_RECORDS} records of {KIND_RECORDS} keys through the consumer "
          "runtime, each record waiting what tools/capacity.py says the handler waits; one at a time against the "
          "catalog's concurrency.\n")
    print("| handler | waits on | per record | one at a time | catalog concurrency | keys side by side | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for ref, kind, waits, serial, concurrency, parallel in kinds():
        print(f"| {ref} | {kind} | {waits} | {serial:.2f} s | {concurrency} | {parallel:.2f} s "
              f"| {serial / parallel:.1f}x |")
    print("DynamoDB waits are a fake store's sleeps (DYNAMODB_MS per call): moto answers one request at a time "
          "(local/moto_server.py), so through moto these handlers would gain nothing from their keys side by side; "
          "on AWS each key's calls go to DynamoDB at once. Bounded by the rounds of the catalog's concurrency "
          f"({KIND_RECORDS} keys 16 at a time: 7 rounds; 64 at a time: 2), by starting the threads and by the "
          "runtime's CPU per record, which the threads share.")

    configured = catalog.service("payment").handler("inventory-outcomes").concurrency
    print(f"\nPayment: {ORDERS} orders, the simulated provider answering in {PROVIDER_MS} ms; time spent in "
          "payment.inventory-outcomes (the charge), 100-record batches.\n")
    print("| concurrency | seconds in the handler | events | orders confirmed | charges per second |")
    print("|---|---|---|---|---|")
    results = {}
    runs: tuple[tuple[str, int | None], ...] = (("1 (one record at a time)", 1), (f"{configured} (catalog)", None))
    for label, asked in runs:
        seconds, events, confirmed = payment(asked)
        results[label] = seconds
        print(f"| {label} | {seconds:.1f} | {events} | {confirmed} of {ORDERS} | {confirmed / seconds:.1f} |")
    serial, parallel = results.values()
    print(f"\nPayment speed-up: {serial / parallel:.1f}x (bounded by the keys per batch and by moto serving one "
          "request at a time here; on AWS each key's calls go to DynamoDB side by side).")


if __name__ == "__main__":
    main()
