"""AWS calls per consumed event, per handler: botocore hooks count every API call while a
realistic flow (N orders through all services, in process, against moto) is processed. An event
is counted as consumed when the handler's mapping would deliver it on AWS (every record: no filters). The
simulated payment provider keeps its ledger in DynamoDB; those calls stand for the provider's own
API and are not counted against the handler.

Beside the calls, the DynamoDB capacity units each handler consumes per event (bench/capacity_units.py:
DynamoDB's documented item-size and unit rules applied to the items moto holds before and after each call):
write units on the table, write units on its global secondary index, read units."""

from __future__ import annotations

import base64
import contextvars
import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NotRequired, TypedDict
from unittest.mock import patch

import boto3
import botocore.session
from moto import mock_aws

from bench.capacity_units import Call, MotoStore, Units
from local import naming, provision
from local.bus import InProcessBus
from local.shop import Shop
from payment.provider import SimulatedProvider
from shopstream import aws, catalog, filters
from tools import capacity

ORDERS = int(os.environ.get("BENCH_ORDERS", 100))
current_handler: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_handler", default=None)
# boto3.client, for a service named at run time (boto3's stubs type a client per literal name)
boto3_client: Callable[..., Any] = boto3.client


class Row(TypedDict):
    """One handler's (or API request's) figures: only ``events`` where it took none."""

    events: int
    dynamodb_per_event: NotRequired[float]
    other_per_event: NotRequired[float]
    wru_per_event: NotRequired[float]
    index_wru_per_event: NotRequired[float]
    rru_per_event: NotRequired[float]
    by_table: NotRequired[dict[tuple[str, str], float]]  # (table, write|index_write|read) -> units per event
    by_operation: NotRequired[dict[str, float]]  # calls per event, most made first


def _count_calls_of_every_client(count: Callable[..., None], units: dict[str, Units]) -> Callable[[], object]:
    """Register ``count`` on every botocore client created from now on, and the capacity units of each
    DynamoDB call made while a handler runs (into ``units``, per handler); returns an undo."""
    original = botocore.session.Session.create_client

    def begin(params, model, context, **_kwargs):
        handler = current_handler.get()
        if handler:
            context["capacity"] = (handler, Call(model.name, params, MotoStore(context["client_region"])).begin())

    def end(http_response, parsed, context, **_kwargs):
        if "capacity" in context:
            handler, call = context.pop("capacity")
            units[handler] += call.end(parsed, succeeded=http_response.status_code < 300)

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call", count)
        if client.meta.service_model.service_name == "dynamodb":
            client.meta.events.register("before-parameter-build.dynamodb", begin)
            client.meta.events.register("after-call.dynamodb", end)
        return client

    patched = patch.object(botocore.session.Session, "create_client", create_client)
    patched.start()
    return patched.stop


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


def _attribute_api_writes(bus, events: Counter) -> None:
    """Count each mutating API request's calls against ``<service> API <METHOD>`` (reads are the flow's own
    checks, not what clients do)."""
    request = bus.request

    def counted(service, method, path, **kwargs):
        if method == "GET":
            return request(service, method, path, **kwargs)
        name = f"{service} API {method}"
        events[name] += 1
        token = current_handler.set(name)
        try:
            return request(service, method, path, **kwargs)
        finally:
            current_handler.reset(token)

    bus.request = counted


def _delivered_on_aws(handler, event: dict) -> int:
    """Records of the batch the handler's mapping would hand it on AWS (its filters, if it had any: see
    shopstream/filters.py; the in-process bus hands it every record)."""
    patterns = filters.esm_filter_patterns(handler)
    count = 0
    for record in (r for records in event["records"].values() for r in records):
        value = base64.b64decode(record["value"]) if record.get("value") is not None else None
        count += filters.passes(patterns, value)
    return count


def _realistic_flow(shop, bus) -> None:
    """Every handler gets events: customers register and change their profile, a product's price
    changes, one order in four is checked out from a cart (changed twice before), one in five is declined (enough, from
    100 orders, for fraud alerts), half of the confirmed ones are shipped, a few carts are
    abandoned, a product is withdrawn and a customer leaves with carts open."""
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
            for quantity in (2, 1):  # changed twice, as a customer's cart is (tools/capacity.py), back to one
                status, changed = bus.call("cart", "PUT", f"/carts/{cart['cartId']}/items", user=user,
                                           body={"items": [{"productId": product, "quantity": quantity}]})
                assert status == 200, changed
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


def measure() -> dict[str, Row]:
    in_process_aws_environment()

    calls: dict[str, Counter] = defaultdict(Counter)
    units: dict[str, Units] = defaultdict(Units)
    events: Counter = Counter()

    def count(model, **_kwargs):
        handler = current_handler.get()
        if handler:
            calls[handler][f"{model.service_model.service_name}.{model.name}"] += 1

    undo = _count_calls_of_every_client(count, units)

    def not_counted(method):
        def run(*args, **kwargs):
            token = current_handler.set(None)
            try:
                return method(*args, **kwargs)
            finally:
                current_handler.reset(token)
        return run

    SimulatedProvider._once = not_counted(SimulatedProvider._once)  # type: ignore[method-assign]  # patched for the whole run
    try:
        with mock_aws():
            aws.reset_clients()
            bus = InProcessBus(queue_urls=provision.create_aws_resources(boto3_client, "eu-west-1"), batch_size=100)
            _attribute_calls_to_handlers(bus, events)
            _attribute_api_writes(bus, events)
            _realistic_flow(Shop(bus), bus)
    finally:
        undo()

    tables = {naming.table(s.name): s.name for s in catalog.SERVICES}
    tables |= {naming.idempotency_table(s.name): f"{s.name} idempotency" for s in catalog.SERVICES}
    tables[naming.CUSTOMER_KEYS_TABLE] = "customer keys"
    rows: dict[str, Row] = {f"{s.name}.{h.name}": {"events": 0} for s in catalog.SERVICES for h in s.handlers}
    for handler, counter in sorted(calls.items()):
        n = max(events[handler], 1)
        dynamodb = sum(v for k, v in counter.items() if k.startswith("dynamodb."))
        rows[handler] = {"events": events[handler], "dynamodb_per_event": dynamodb / n,
                         "other_per_event": (sum(counter.values()) - dynamodb) / n,
                         "wru_per_event": units[handler].write / n,
                         "index_wru_per_event": units[handler].index_write / n,
                         "rru_per_event": units[handler].read / n,
                         "by_table": {(tables.get(t, t), kind): v / n
                                      for (t, kind), v in units[handler].by_table.items()},
                         "by_operation": {k: round(v / n, 2) for k, v in counter.most_common()}}
    return rows


def _is_api(name: str) -> bool:
    return " API " in name


DESIGN_ORDERS_PER_SECOND = 2000.0


def design_capacity(rows: dict[str, Row],
                    orders_per_second: float = DESIGN_ORDERS_PER_SECOND) -> dict[str, dict[str, float]]:
    """Units per second each table takes at ``orders_per_second``: the capacity model's records/s per handler
    (tools/capacity.py) times the units each handler took per event here, plus the API's writes."""
    rates = {load.ref: load.records_per_second for load in capacity.loads(orders_per_second)}
    # mutating API requests per order as the model counts them (a cart created and changed twice, the order, a kept
    # order's dispatch and delivery)
    rates |= {name: per_order * orders_per_second for name, per_order in capacity.api_requests_per_order().items()}
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"write": 0.0, "index_write": 0.0, "read": 0.0})
    for name, row in rows.items():
        for (table, kind), per_event in row.get("by_table", {}).items():
            out[table][kind] += per_event * rates.get(name, 0.0)
    return dict(sorted(out.items()))


def report(rows: dict[str, Row]) -> str:
    mix = {name: round(count, 2) for name, count in capacity.api_requests_per_order().items()}
    lines = ["| handler | events | DynamoDB calls / event | other calls / event | target ≤ 3 DynamoDB "
             "| WRU / event | GSI WRU / event | RRU / event | top operations |",
             "|---|---|---|---|---|---|---|---|---|"]
    for handler, r in sorted(rows.items()):
        if not r["events"]:
            lines.append(f"| {handler} | 0 | - | - | not exercised | - | - | - | |")
            continue
        top = ", ".join(f"{k} {v}" for k, v in list(r["by_operation"].items())[:4])
        target = "-" if _is_api(handler) else "met" if r["dynamodb_per_event"] <= 3 else "not met"
        lines.append(f"| {handler} | {r['events']} | {r['dynamodb_per_event']:.2f} | {r['other_per_event']:.2f} | "
                     f"{target} | {r['wru_per_event']:.2f} | "
                     f"{r['index_wru_per_event']:.2f} | {r['rru_per_event']:.2f} | {top} |")
    handlers = {h: r for h, r in rows.items() if not _is_api(h)}
    exercised = [r for r in handlers.values() if r["events"]]
    measured = [r["dynamodb_per_event"] for r in exercised]
    trail = [r for h, r in handlers.items() if r["events"] and h.startswith("audit.trail-")]
    others = [r for h, r in handlers.items() if r["events"] and not h.startswith("audit.trail-")]

    def weighted(group: list[Row], column: Literal["wru_per_event", "index_wru_per_event", "rru_per_event"]) -> float:
        return sum(r[column] * r["events"] for r in group) / max(sum(r["events"] for r in group), 1)

    lines += ["", f"{len(measured)} of {len(handlers)} handlers exercised; DynamoDB calls per event: median "
                  f"{statistics.median(measured):.2f} (target ≤ 2), highest {max(measured):.2f} (target ≤ 3).",
              f"Capacity units per event, weighted by events (this flow's mix): trail handlers "
              f"{weighted(trail, 'wru_per_event'):.2f} WRU + {weighted(trail, 'index_wru_per_event'):.2f} GSI WRU + "
              f"{weighted(trail, 'rru_per_event'):.2f} RRU; every other handler "
              f"{weighted(others, 'wru_per_event'):.2f} WRU + {weighted(others, 'index_wru_per_event'):.2f} GSI WRU + "
              f"{weighted(others, 'rru_per_event'):.2f} RRU (bench/capacity_units.py: DynamoDB's documented rules on "
              f"the items moto holds; a transaction's items twice, cancelled ones included). Rows \"<service> API "
              f"<method>\" are per request.",
              "", f"Units per second by table at {DESIGN_ORDERS_PER_SECOND:,.0f} orders/s (tools/capacity.py's "
              f"records/s per handler x the units above; API requests per order {mix}):", "",
              "| table | WRU/s | GSI WRU/s | RRU/s |", "|---|---|---|---|"]
    for table, units in design_capacity(rows).items():
        lines.append(f"| {table} | {units['write']:,.0f} | {units['index_write']:,.0f} | {units['read']:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure()))
