"""AWS calls per consumed event, per handler: botocore hooks count every API call while a
realistic flow (N orders through all services, in process, against moto) is processed."""

from __future__ import annotations

import contextvars
import os
from collections import Counter, defaultdict

ORDERS = int(os.environ.get("BENCH_ORDERS", 100))
current_handler: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_handler", default=None)


def _count_calls_of_every_client(count) -> object:
    """Register ``count`` on every botocore client created from now on; returns an undo."""
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call", count)
        return client

    botocore.session.Session.create_client = create_client
    return lambda: setattr(botocore.session.Session, "create_client", original)


def _attribute_calls_to_handlers(bus, events: Counter) -> None:
    """Wrap every EventConsumer so calls made while it runs are counted against it."""
    for module in bus.consumer_modules.values():
        for name in dir(module):
            consumer = getattr(module, name)
            if type(consumer).__name__ != "EventConsumer":
                continue

            def wrapped(event, context, _consumer=consumer):
                token = current_handler.set(_consumer.name)
                try:
                    events[_consumer.name] += sum(len(v) for v in event["records"].values())
                    return _consumer(event, context)
                finally:
                    current_handler.reset(token)

            setattr(module, name, wrapped)


def measure() -> dict[str, dict]:
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "eu-west-1",
                       "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                       "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"}.items():
        os.environ.setdefault(key, value)
    import boto3
    from moto import mock_aws

    calls: dict[str, Counter] = defaultdict(Counter)
    events: Counter = Counter()

    def count(model, **_kwargs):
        handler = current_handler.get()
        if handler:
            calls[handler][f"{model.service_model.service_name}.{model.name}"] += 1

    undo = _count_calls_of_every_client(count)
    try:
        with mock_aws():
            from local import provision
            from local.bus import InProcessBus
            from shopstream import aws
            from tests.integration.conftest import Shop

            aws.reset_clients()
            provision.create_tables(boto3.client("dynamodb"))
            queues = provision.create_queues(boto3.client("sqs"))
            provision.create_buckets(boto3.client("s3"), "eu-west-1")
            bus = InProcessBus(queue_urls=queues, batch_size=100)
            _attribute_calls_to_handlers(bus, events)
            shop = Shop(bus)
            shop.register("bench-user")
            product = shop.product("BENCH", 1000, stock=ORDERS * 2)
            bus.pump()
            for n in range(ORDERS):
                shop.order("bench-user", {product: 1},
                           method="pm_card_chargeDeclined" if n % 5 == 0 else "pm_card_visa")
            bus.pump()
    finally:
        undo()
    rows = {}
    for handler, counter in sorted(calls.items()):
        n = max(events[handler], 1)
        dynamodb = sum(v for k, v in counter.items() if k.startswith("dynamodb."))
        rows[handler] = {"events": events[handler], "dynamodb_per_event": dynamodb / n,
                         "other_per_event": (sum(counter.values()) - dynamodb) / n,
                         "by_operation": {k: round(v / n, 2) for k, v in counter.most_common()}}
    return rows


def report(rows: dict[str, dict]) -> str:
    lines = ["| handler | events | DynamoDB calls / event | other calls / event | target ≤ 3 DynamoDB "
             "| top operations |",
             "|---|---|---|---|---|---|"]
    for handler, r in rows.items():
        top = ", ".join(f"{k} {v}" for k, v in list(r["by_operation"].items())[:4])
        lines.append(f"| {handler} | {r['events']} | {r['dynamodb_per_event']:.2f} | {r['other_per_event']:.2f} | "
                     f"{'met' if r['dynamodb_per_event'] <= 3 else 'not met'} | {top} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure()))
