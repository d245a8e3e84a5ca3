"""One product everybody orders: the inventory's reservation handler (inventory.order-reservations)
through the in-process bus with moto, 16 orders side by side (as 16 partitions' invocations would
run), 100-record batches; the product holds 4 units per order, on 1, 4, 16 and 32 counters. Every
DynamoDB call of the handler waits BENCH_DYNAMODB_MS (5 ms, a call's round trip on AWS) before it
reaches moto, so concurrent reservations overlap as they would there.

Printed per number of counters: commits that lost a race (a counter changed between the read and
the write: read again) per reservation. Every order is reserved exactly once whatever the number of
counters, and each counter's own books stay whole (checked). Throughput is not printed: moto serves
one request at a time here, so it measures moto, not DynamoDB.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any
from unittest.mock import patch

from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from bench.aws_calls import boto3_client, in_process_aws_environment
from local import provision
from local.bus import InProcessBus
from local.moto_server import _serialize_in_process_calls
from local.shop import Shop, scan
from shopstream import aws, catalog, config, transaction
from shopstream.consumer import EventConsumer

ORDERS = int(os.environ.get("BENCH_HOT_ORDERS", 192))
CALL_MS = float(os.environ.get("BENCH_DYNAMODB_MS", 5))
PARALLEL = 16


def run(counters: int) -> dict[str, Any]:
    os.environ["SHOPSTREAM_INVENTORY_STOCK_SHARDS"] = str(counters)
    config._service_settings.clear()
    _serialize_in_process_calls(BotocoreStubber)
    spec = catalog.service("inventory").handler("order-reservations")
    counts: Counter[str] = Counter()
    in_handler = [False]
    original_commit = transaction.UnitOfWork.commit

    def counting_commit(uow: transaction.UnitOfWork) -> None:
        try:
            original_commit(uow)
        except transaction.ConditionFailed:
            if in_handler[0]:
                counts["lost races"] += 1
            raise

    def call_latency(**_kwargs: Any) -> None:
        if in_handler[0]:
            time.sleep(CALL_MS / 1000)

    with mock_aws():
        aws.reset_clients()
        bus = InProcessBus(queue_urls=provision.create_aws_resources(boto3_client, "eu-west-1"), batch_size=100)
        consumer = getattr(bus.consumer_modules["inventory"], spec.entry)
        assert isinstance(consumer, EventConsumer)
        consumer.concurrency = PARALLEL  # as the invocations of that many partitions would run side by side

        def timed(event: dict[str, Any], context: Any, _run: Any = consumer.__call__) -> Any:
            in_handler[0] = True
            try:
                return _run(event, context)
            finally:
                in_handler[0] = False

        setattr(bus.consumer_modules["inventory"], spec.entry, lambda event, context: timed(event, context))
        counting = patch.object(transaction.UnitOfWork, "commit", counting_commit)
        counting.start()
        try:
            shop = Shop(bus)
            users = [f"bench-buyer-{n}" for n in range(16)]
            for user in users:
                shop.register(user)
            product = shop.product("BENCH-HOT", 1000, stock=4 * ORDERS)
            bus.pump()
            aws.client("dynamodb").meta.events.register("before-call.dynamodb", call_latency)
            orders = [shop.order(users[n % len(users)], {product: 1}) for n in range(ORDERS)]
            bus.pump()
            reserved = sum(1 for i in scan("inventory") if i["sk"] == "RESERVATION" and i["status"] != "FAILED")
            books = [c for c in scan("inventory") if c["sk"] == "SHARD"]
            assert all(c["received"] == c["available"] + c["reserved"] + c["sold"] and c["available"] >= 0
                       for c in books), books
            assert len(books) == counters
        finally:
            counting.stop()
            setattr(bus.consumer_modules["inventory"], spec.entry, consumer)
            consumer.concurrency = spec.concurrency
    return {"counters": counters, "orders": len(orders), "reserved": reserved, "lost": counts["lost races"]}


def main() -> None:
    in_process_aws_environment()
    print(f"{ORDERS} orders of one product; inventory.order-reservations running {PARALLEL} orders side by side "
          f"(as {PARALLEL} partitions' invocations would), each DynamoDB call {CALL_MS:g} ms.\n")
    print("| stock counters | orders reserved | lost races per reservation |")
    print("|---|---|---|")
    for counters in (1, 4, 16, 32):
        r = run(counters)
        print(f"| {r['counters']} | {r['reserved']} of {r['orders']} | {r['lost'] / max(r['reserved'], 1):.2f} |")


if __name__ == "__main__":
    main()
