"""Key-ordered parallelism inside a batch: wall time of one batch, one record at a time against
keys side by side (shopstream.batch.KeyOrderedBatchProcessor under the consumer runtime).

1. A handler that waits 50 ms per record (an I/O call), 64 records over 1, 4, 16 and 64 keys,
   concurrency 1 against 16. Target: at least 8x at 16 keys. One key cannot go faster: its
   records stay in order.
2. The payment service's own charge handler (payment.inventory-outcomes) through the in-process
   bus with moto, the simulated provider answering in BENCH_PROVIDER_MS (300 ms, a real
   provider's round trip): the time the handler holds its partitions, serial against the
   catalog's concurrency.
"""

from __future__ import annotations

import os
import time
from typing import Any

RECORDS = 64
WAIT_MS = 50
PARALLEL = 16
ORDERS = int(os.environ.get("BENCH_PAYMENT_ORDERS", 96))
PROVIDER_MS = int(os.environ.get("BENCH_PROVIDER_MS", 300))


def synthetic() -> list[tuple[int, float, float]]:
    """(keys, serial seconds, parallel seconds) for one 64-record batch."""
    from bench.consumer_cpu import InMemoryIdempotency, NoDeadLetters
    from local.context import LocalLambdaContext
    from shopstream.consumer import EventConsumer
    from tests.support import batch, kafka_record_of, product_created

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


def payment(concurrency: int | None) -> tuple[float, int, int]:
    """(seconds in payment.inventory-outcomes, events it took, orders confirmed) for ORDERS orders;
    ``concurrency`` None: what the catalog says."""
    os.environ["SHOPSTREAM_PAYMENT_SIMULATOR_LATENCY_MS"] = str(PROVIDER_MS)
    import boto3
    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    from local import provision
    from local.bus import InProcessBus
    from local.moto_server import _serialize_in_process_calls
    from shopstream import aws, catalog, config
    from shopstream.consumer import EventConsumer
    from tests.integration.conftest import Shop

    config._service_settings.clear()
    _serialize_in_process_calls(BotocoreStubber)  # key-parallel handlers share moto: one request at a time
    with mock_aws():
        aws.reset_clients()
        bus = InProcessBus(queue_urls=provision.create_aws_resources(boto3.client, "eu-west-1"), batch_size=100)
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
    from bench.aws_calls import in_process_aws_environment

    in_process_aws_environment()
    print(f"Synthetic: {RECORDS} records in one batch, each waiting {WAIT_MS} ms; concurrency 1 against {PARALLEL}.\n")
    print("| keys in the batch | one at a time | keys side by side | speed-up |")
    print("|---|---|---|---|")
    for keys, serial, parallel in synthetic():
        print(f"| {keys} | {serial:.2f} s | {parallel:.2f} s | {serial / parallel:.1f}x |")
    from shopstream import catalog

    configured = catalog.service("payment").handler("inventory-outcomes").concurrency
    print(f"\nPayment: {ORDERS} orders, the simulated provider answering in {PROVIDER_MS} ms; time spent in "
          "payment.inventory-outcomes (the charge), 100-record batches.\n")
    print("| concurrency | seconds in the handler | events | orders confirmed | charges per second |")
    print("|---|---|---|---|---|")
    results = {}
    for label, concurrency in (("1 (one record at a time)", 1), (f"{configured} (catalog)", None)):
        seconds, events, confirmed = payment(concurrency)
        results[label] = seconds
        print(f"| {label} | {seconds:.1f} | {events} | {confirmed} of {ORDERS} | {confirmed / seconds:.1f} |")
    serial, parallel = results.values()
    print(f"\nPayment speed-up: {serial / parallel:.1f}x (bounded by the keys per batch and by moto serving one "
          "request at a time here; on AWS each key's calls go to DynamoDB side by side).")


if __name__ == "__main__":
    main()
