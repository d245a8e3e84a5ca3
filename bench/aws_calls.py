"""AWS calls per consumed event, per handler: botocore hooks count every API call while a
realistic flow (N orders through all services, in process, against moto) is processed. An event
is counted as consumed when the handler's mapping would deliver it on AWS (every record: no filters). The
simulated payment provider keeps its ledger in DynamoDB; those calls stand for the provider's own
API and are not counted against the handler."""

from __future__ import annotations

import contextvars
import os
import statistics
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
                    events[_consumer.name] += _delivered_on_aws(_consumer.spec, event)
                    return _consumer(event, context)
                finally:
                    current_handler.reset(token)

            setattr(module, name, wrapped)


def _delivered_on_aws(handler, event: dict) -> int:
    """Records of the batch the handler's mapping would hand it on AWS (its filters, if it had any: see
    shopstream/filters.py; the in-process bus hands it every record)."""
    import base64

    from shopstream import filters

    patterns = filters.esm_filter_patterns(handler)
    count = 0
    for record in (r for records in event["records"].values() for r in records):
        value = base64.b64decode(record["value"]) if record.get("value") is not None else None
        count += filters.passes(patterns, value)
    return count


def _realistic_flow(shop, bus) -> None:
    """Every handler gets events: customers register and change their profile, a product's price
    changes, one order in four is checked out from a cart, one in five is declined (enough, from
    100 orders, for fraud alerts), half of the confirmed ones are shipped, a few carts are
    abandoned, a product is withdrawn and a customer leaves with carts open."""
    from datetime import UTC, datetime, timedelta

    users = [f"bench-user-{n}" for n in range(max(ORDERS // 10, 2))]
    for user in users:
        shop.register(user)
    product = shop.product("BENCH", 1000, stock=ORDERS * 2)
    bus.pump()
    for user in users[::2]:
        assert bus.call("user", "PATCH", f"/users/{user}", user=user, body={"name": "Ada L."})[0] == 200
    assert bus.call("catalog", "PATCH", f"/products/{product}", user="admin-1", admin=True,
                    body={"price": {"amount": 900, "currency": "EUR"}})[0] == 200
    bus.pump()
    orders = []
    for n in range(ORDERS):
        user = users[n % len(users)]
        extra = {}
        if n % 4 == 0:
            status, cart = bus.call("cart", "POST", "/carts", user=user,
                                    body={"items": [{"productId": product, "quantity": 1}]})
            assert status == 201, cart
            extra = {"cartId": cart["cartId"]}
        orders.append(shop.order(user, {product: 1}, method="pm_card_chargeDeclined" if n % 5 == 0 else "pm_card_visa",
                                 **extra))
    for user in users[:3]:  # left in their carts
        bus.call("cart", "POST", "/carts", user=user, body={"items": [{"productId": product, "quantity": 2}]})
    bus.pump()
    for order_id in orders[1::2]:
        if shop.get_order(order_id)["status"] == "CONFIRMED":
            shop.ship(order_id)
    # A product withdrawn and a customer leaving, each with an open cart.
    withdrawn = shop.product("BENCH-WITHDRAWN", 500, stock=10)
    bus.pump()
    for user in users[:2]:
        bus.call("cart", "POST", "/carts", user=user, body={"items": [{"productId": withdrawn, "quantity": 1}]})
    bus.pump()
    assert bus.call("catalog", "POST", f"/products/{withdrawn}/discontinue", user="admin-1", admin=True)[0] == 200
    assert bus.call("user", "POST", f"/users/{users[1]}/deactivate", user=users[1])[0] == 200
    bus.pump()

    bus.run_schedule("cart", "sweep_abandoned", datetime.now(UTC) + timedelta(days=7))
    bus.pump()


def in_process_aws_environment() -> None:
    """Credentials and region for moto in process, and quiet Powertools (unless already set)."""
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "eu-west-1",
                       "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                       "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"}.items():
        os.environ.setdefault(key, value)


def measure() -> dict[str, dict]:
    in_process_aws_environment()
    import boto3
    from moto import mock_aws

    calls: dict[str, Counter] = defaultdict(Counter)
    events: Counter = Counter()

    def count(model, **_kwargs):
        handler = current_handler.get()
        if handler:
            calls[handler][f"{model.service_model.service_name}.{model.name}"] += 1

    undo = _count_calls_of_every_client(count)
    from payment.provider import SimulatedProvider

    def not_counted(method):
        def run(*args, **kwargs):
            token = current_handler.set(None)
            try:
                return method(*args, **kwargs)
            finally:
                current_handler.reset(token)
        return run

    SimulatedProvider._once = not_counted(SimulatedProvider._once)  # type: ignore[method-assign]
    try:
        with mock_aws():
            from local import provision
            from local.bus import InProcessBus
            from shopstream import aws
            from tests.integration.conftest import Shop

            aws.reset_clients()
            bus = InProcessBus(queue_urls=provision.create_aws_resources(boto3.client, "eu-west-1"), batch_size=100)
            _attribute_calls_to_handlers(bus, events)
            _realistic_flow(Shop(bus), bus)
    finally:
        undo()
    from shopstream import catalog

    rows = {f"{s.name}.{h.name}": {"events": 0} for s in catalog.SERVICES for h in s.handlers}
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
    for handler, r in sorted(rows.items()):
        if not r["events"]:
            lines.append(f"| {handler} | 0 | - | - | not exercised | |")
            continue
        top = ", ".join(f"{k} {v}" for k, v in list(r["by_operation"].items())[:4])
        lines.append(f"| {handler} | {r['events']} | {r['dynamodb_per_event']:.2f} | {r['other_per_event']:.2f} | "
                     f"{'met' if r['dynamodb_per_event'] <= 3 else 'not met'} | {top} |")
    measured = [r["dynamodb_per_event"] for r in rows.values() if r["events"]]
    lines += ["", f"{len(measured)} of {len(rows)} handlers exercised; DynamoDB calls per event: median "
                  f"{statistics.median(measured):.2f} (target ≤ 2), highest {max(measured):.2f} (target ≤ 3)."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure()))
