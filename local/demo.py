"""``make demo``: a mix of orders over HTTP, each waited on with a long-poll until its saga settles, then checked.

Uses the API of a running ``make local`` (SHOPSTREAM_DEMO_URL, default http://127.0.0.1:8000),
or starts its own local stack when nothing answers there. Exits 1 if an invariant breaks.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from functools import partial
from typing import Any

import boto3
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from local import naming
from local.client import ApiClient, partition_numbers
from local.processes import free_port
from local.stack import LocalStack
from shopstream import aws, catalog
from shopstream.config import reset_settings

# local.runtime (with moto, ~0.4 s) is imported where an own stack is started: against a running make local, the
# demo only speaks HTTP, Kafka and SQS.

ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01 F5P2", "country": "IE"}
ADMIN: dict[str, Any] = {"user": "demo-admin", "admin": True}


CLIENTS = 8  # concurrent clients placing orders
# Concurrent long-polls (GET /orders/{id}?waitFor=), one per order in flight: settle times are measured from the
# placement to the answer. Beyond this many orders in flight an order's wait starts late (its time includes that).
WAITERS = 64


def progress_line(placed: int, settled: int, total: int, elapsed: float) -> None:
    width = 30
    filled = int(width * settled / max(total, 1))
    rate = settled / elapsed if elapsed else 0.0
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] placed {placed}/{total}  settled {settled}/{total}  "
                     f"{rate:.1f} orders/s  {elapsed:.0f}s ")
    sys.stderr.flush()


def kafka_bootstrap() -> str:
    port = os.environ.get("SHOPSTREAM_LOCAL_KAFKA_PORT", 9092)
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


def run(client: ApiClient, orders: int, seed: int) -> tuple[list[str], dict]:
    rng = random.Random(seed)
    run_id = uuid.uuid4().hex[:6]
    users = [f"demo-{run_id}-{n}" for n in range(5)]
    for user in users:
        status, body, _ = client.call("POST", "/users", user=user, body={"email": f"{user}@example.com", "name": user})
        assert status == 201, body
    stock = {"plenty": 10_000, "scarce": max(2, orders // 10)}
    products = {}
    for name, units in stock.items():
        status, product, _ = client.call("POST", "/products", **ADMIN, body={
            "sku": f"{name}-{run_id}", "name": name, "price": {"amount": rng.randint(500, 5000), "currency": "EUR"}})
        assert status == 201, product
        products[name] = product
        client.wait_until(lambda p=product: client.call("GET", f"/inventory/{p['productId']}", **ADMIN)[0] == 200)
        client.call("POST", f"/inventory/{product['productId']}/adjustments", **ADMIN,
                    body={"delta": units, "reason": "demo seed"})
    # the order service learns of users and products from their events
    client.wait_until(lambda: all(client.call("GET", f"/products/{p['productId']}")[0] in (200, 401)
                                  for p in products.values()))
    kinds = rng.choices(["visa", "declined", "insufficient", "scarce", "cancel"], [55, 15, 10, 12, 8], k=orders)
    placed: list[tuple[str, str, float, str]] = []
    settle_seconds: dict[str, float] = {}  # order id -> from its placement to the answer of its long-poll
    lock = threading.Lock()
    waiters = concurrent.futures.ThreadPoolExecutor(min(WAITERS, max(orders, 1)))
    deadline = time.monotonic() + 180 + orders

    def await_outcome(order_id: str, user: str, started: float) -> None:
        _, outcome = client.await_order(order_id, user, "CONFIRMED", "CANCELLED",
                                        timeout=max(0.0, deadline - time.monotonic()))
        if outcome == "reached":
            with lock:
                settle_seconds[order_id] = time.monotonic() - started

    def place(n: int) -> None:
        kind, order_rng = kinds[n], random.Random(seed * 100_003 + n)
        user = order_rng.choice(users)
        product = products["scarce" if kind == "scarce" else "plenty"]
        method = {"declined": "pm_card_chargeDeclined", "insufficient": "pm_card_insufficientFunds"}.get(kind,
                                                                                                         "pm_card_visa")
        body = {"items": [{"productId": product["productId"], "quantity": order_rng.randint(1, 3)}],
                "paymentMethod": method, "shippingAddress": ADDRESS}
        started = time.monotonic()
        status, answer, _ = client.wait_until(
            lambda: (r := client.call("POST", "/orders", user=user, body=body)) and r[0] != 422 and r, timeout=30)
        assert status == 202, answer
        if kind == "cancel":
            client.call("POST", f"/orders/{answer['orderId']}/cancel", user=user)
        with lock:
            placed.append((answer["orderId"], user, started, kind))
        waits.append(waiters.submit(await_outcome, answer["orderId"], user, started))

    started = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(CLIENTS)
    waits: list[concurrent.futures.Future] = []
    futures = [pool.submit(place, n) for n in range(orders)]
    try:
        while time.monotonic() < deadline:
            with lock:
                ids = {order_id for order_id, *_ in placed}
                done = len(settle_seconds)
            elapsed = time.monotonic() - started
            progress_line(len(ids), done, orders, elapsed)
            if len(ids) == orders and done == orders:
                break
            time.sleep(0.2)
        for future in futures:  # every order placed (or the error that stopped it)
            future.result()
        for future in waits:  # and waited on, each within the deadline
            future.result()
    finally:
        pool.shutdown()
        waiters.shutdown()
        sys.stderr.write("\n")
    settled: dict[str, dict] = {}
    for order_id, user, _, _ in placed:
        if order_id in settle_seconds:  # read again: a cancel may have moved a confirmed order on since
            settled[order_id] = client.call("GET", f"/orders/{order_id}", user=user)[1]
    problems = check(client, placed, settled, products, stock)
    return problems, {"settled": settled, "settle_seconds": list(settle_seconds.values()), "products": products}


def check(client: ApiClient, placed, settled, products, stock) -> list[str]:
    problems = []
    for order_id, *_ in placed:
        if order_id not in settled:
            problems.append(f"{order_id} never left PENDING")
    sold: Counter[str] = Counter()
    for order in settled.values():
        status, payment, _ = client.call("GET", f"/payments/pay_{order['orderId']}", **ADMIN)
        if order["status"] == "CONFIRMED":
            for line in order["items"]:
                sold[line["productId"]] += line["quantity"]
            if status == 200 and payment["status"] in ("AUTHORISED", "CAPTURING"):  # captured after confirmation
                status, payment = client.wait_until(partial(_captured, client, order["orderId"]), timeout=30)
            if status != 200 or payment["status"] != "CAPTURED" or payment["amount"] != order["total"]:
                problems.append(f"{order['orderId']} confirmed but payment is {payment}")
        elif order["status"] == "CANCELLED":
            if not order.get("cancellationReason"):
                problems.append(f"{order['orderId']} cancelled without a reason")
            if status == 200 and payment["status"] == "CAPTURED":
                problems.append(f"{order['orderId']} cancelled but money kept")
    for name, product in products.items():
        path = f"/inventory/{product['productId']}"
        level = client.wait_until(lambda path=path: (r := client.call("GET", path, **ADMIN)[1])
                                  and r["reserved"] == 0 and r, timeout=30)
        if stock[name] != level["available"] + sold[product["productId"]]:
            problems.append(f"stock of {name} not conserved: {stock[name]} != {level['available']} available + "
                            f"{sold[product['productId']]} sold")
    return problems


def _captured(client: ApiClient, order_id: str) -> tuple[int, Any] | None:
    """The payment's answer once it is no longer waiting for its capture (None while it is)."""
    status, payment, _ = client.call("GET", f"/payments/pay_{order_id}", **ADMIN)
    return None if status == 200 and payment["status"] in ("AUTHORISED", "CAPTURING") else (status, payment)


def summary(result: dict, elapsed: float) -> str:
    outcome = Counter(f"{o['status']}{' (' + o['cancellationReason'] + ')' if o.get('cancellationReason') else ''}"
                      for o in result["settled"].values())
    lines = ["", "orders by final state", "---------------------"]
    lines += [f"  {state:<32} {count:>5}" for state, count in sorted(outcome.items())]
    lines += ["", "events per topic", "----------------"]
    lines += [f"  {topic:<32} {count:>5}" for topic, count in topic_counts().items()]
    lines += ["", "dead-letter queues", "------------------"]
    depths = dlq_depths()
    lines += [f"  {name:<48} {depth:>3}" for name, depth in depths.items() if depth] or ["  all empty"]
    times = result["settle_seconds"]
    lines += ["", f"time to settle: p50 {percentile(times, 50):.2f}s  p95 {percentile(times, 95):.2f}s  "
                  f"max {max(times, default=0):.2f}s   ({len(times)} orders in {elapsed:.1f}s)"]
    return "\n".join(lines)


def topic_counts(idle_seconds: float = 1.5) -> dict[str, int]:
    """Records per topic, counted by reading them: Tansu's high watermarks can be short by one."""
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap(), "group.id": "demo-counter",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(t.name, p, OFFSET_BEGINNING) for t in catalog.TOPICS
                     for p in partition_numbers(consumer, t.name)])
    counts = {t.name: 0 for t in catalog.TOPICS}
    last_seen = time.monotonic()
    try:
        while time.monotonic() - last_seen < idle_seconds:
            batch = [m for m in consumer.consume(500, 0.2) if m.error() is None]
            for message in batch:
                counts[message.topic() or ""] += 1
            if batch:
                last_seen = time.monotonic()
        return counts
    finally:
        consumer.close()


def dlq_depths() -> dict[str, int]:
    sqs = boto3.client("sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or
                       f"http://127.0.0.1:{os.environ.get('SHOPSTREAM_LOCAL_AWS_PORT', 4566)}",
                       region_name="eu-west-1", aws_access_key_id="local", aws_secret_access_key="local")
    depths = {}
    for name in naming.all_queues():
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        depths[name] = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                           ["Attributes"]["ApproximateNumberOfMessages"])
    return depths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=os.environ.get("SHOPSTREAM_DEMO_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--orders", type=int, default=int(os.environ.get("ORDERS", 40)))
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with ExitStack() as cleanup:
        client = ApiClient(args.url)
        if not client.healthy():
            client = cleanup.enter_context(embedded_stack())
            print(f"no API at {args.url}; started a local stack for this run", file=sys.stderr)
        started = time.monotonic()
        problems, result = run(client, args.orders, args.seed)
        print(summary(result, time.monotonic() - started))
    if problems:
        print("\nINVARIANTS BROKEN:\n  " + "\n  ".join(problems))
        return 1
    print("\nall invariants hold: every order settled, stock and money conserved")
    return 0


class embedded_stack:  # noqa: N801 (a context manager used like a function)
    current: Any = None  # the running runtime, for benchmarks
    def __enter__(self) -> ApiClient:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        from local.runtime import LocalRuntime

        naming.use_dev_service_settings()  # as `make local` runs (local/__main__.py)
        self.stack = LocalStack(external_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
                                partitions=naming.dev_partitions()).start()
        os.environ.update(self.stack.process_environment())
        os.environ.pop("AWS_ENDPOINT_URL", None)  # this process's calls are answered in process
        aws.reset_clients()  # clients made before this point would not use the local endpoint
        reset_settings()
        os.environ["SHOPSTREAM_LOCAL_KAFKA_PORT"] = str(self.stack.kafka_port)
        os.environ["SHOPSTREAM_LOCAL_AWS_PORT"] = str(self.stack.aws_port)
        self.runtime = LocalRuntime(self.stack, api_port=free_port()).start()
        self.runtime.wait_ready()
        embedded_stack.current = self.runtime  # benchmarks read the runtime's counters
        return ApiClient(f"http://127.0.0.1:{self.runtime.api_port}")

    def __exit__(self, *exc: object) -> None:
        self.runtime.stop()
        self.stack.stop()


if __name__ == "__main__":
    sys.exit(main())
