"""A seeded simulation of the whole system under the interleavings a deployment produces.

    python -m local.simulation --seeds 200          seeds 0..199 (one process per core), a line per violation
    python -m local.simulation --seed 1234          replay one seed exactly; if it fails, find the fewest
                                                    kinds of fault it needs and print the steps touching it
    python -m local.simulation --seed 1234 --trace  the same seed, every step

Per seed it sets up users, products and stock through the API, then runs a random but legal
schedule over the in-process bus (real consumer runtime, real relay, moto), mixing:

- deliveries of one batch to one handler's partition, in any order across partitions and topics
  (the broker keeps the order within a partition), some delivered twice;
- relay polls of one service's stream, with publishes that fail or whose acknowledgement is lost;
- transient errors just before or just after a DynamoDB commit, and crashes just after one (the
  idempotency record stays in progress until its Lambda timeout);
- provider timeouts after the charge was recorded;
- replays of a partition from an earlier offset, with or without the idempotency records;
- API commands (place, cancel, dispatch, deliver, stock adjustments, the timeout sweeper, and in some
  seeds the erasure of a customer) run between steps and also in the middle of a handler, between its
  reads and its commit.

Then it drains (no faults) and checks what must hold whatever happened: money and stock
conserved, every saga terminal, each e-mail sent at most once, the audit chain closed, no personal
data in clear in any table or topic, and nothing kept of an erased customer. A violation prints the
seed and the steps that touched the order concerned.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ORDER_METHODS = ("pm_card_visa",) * 4 + ("pm_card_chargeDeclined", "pm_card_insufficientFunds")
ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}
ADMIN = "admin-sim"
KEPT = ("CONFIRMED", "SHIPPED", "DELIVERED")


class InjectedFault(Exception):
    """A transient error (throttling, a lost response): the record is retried."""


class InjectedCrash(BaseException):
    """The function stopped here (timeout, out of memory): nothing after it ran, nothing was cleaned up."""


@dataclass
class Step:
    number: int
    text: str
    keys: frozenset[str] = frozenset()


@dataclass
class Violation:
    what: str
    keys: frozenset[str] = frozenset()


@dataclass
class Report:
    seed: int
    violations: list[Violation]
    steps: list[Step]
    orders: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    erased: int = 0  # customers erased during the schedule

    def trace_for(self, violation: Violation) -> list[Step]:
        """The steps that touched what the violation is about (all steps if it names nothing)."""
        if not violation.keys:
            return self.steps
        return [s for s in self.steps if s.keys & violation.keys]


@dataclass
class Chaos:
    """How often each fault happens; the drain runs with all of them at zero."""

    fault_before_commit: float = 0.04
    fault_after_commit: float = 0.04
    crash_after_commit: float = 0.03
    race_in_commit: float = 0.08
    publish_fails: float = 0.05
    publish_ack_lost: float = 0.05
    provider_timeout: float = 0.15
    duplicate_batch: float = 0.1
    replay: float = 0.02
    replay_forgets: float = 0.5


def _sim_context() -> Any:
    """A Lambda context whose invocation is always about to time out: an idempotency record left in
    progress by a crash expires at once, as it would after the real function's timeout."""
    from local.context import LocalLambdaContext

    return LocalLambdaContext("simulated", timeout_seconds=0.001)


class _FlakyPublisher:
    """In-memory topic writes where a publish can fail, or succeed with its acknowledgement lost."""

    def __init__(self, simulation: Simulation):
        self.simulation = simulation
        self.records: list[Any] = []
        self.pending: list[Any] = []

    def publish(self, record: Any) -> None:
        self.pending.append(record)

    def flush(self) -> None:
        from shopstream.publisher import PublishError

        failed: dict[str, str] = {}
        for record in self.pending:
            roll = self.simulation.roll()
            if roll < self.simulation.chaos.publish_fails:
                failed[record.event_id] = "injected: not delivered"
                continue
            self.records.append(record)
            if roll < self.simulation.chaos.publish_fails + self.simulation.chaos.publish_ack_lost:
                failed[record.event_id] = "injected: acknowledgement lost"
        self.pending = []
        if failed:
            self.simulation.faults["publish"] += len(failed)
            raise PublishError(failed)


class _CountingSender:
    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    def send(self, *, message_id: str, to: str, subject: str, body: str) -> None:
        self.sent[message_id] += 1


class Simulation:
    def __init__(self, seed: int, chaos: Chaos | None = None, *, orders: tuple[int, int] = (2, 5)):
        self.seed = seed
        self.random = random.Random(seed)
        self.chaos = chaos or Chaos()
        self.order_range = orders
        self.steps: list[Step] = []
        self.faults: Counter[str] = Counter()
        self.order_ids: list[str] = []
        self.products: list[str] = []
        self.users: list[str] = []
        self.erased: list[str] = []
        self.commands: list[Callable[[], None]] = []
        self.outcome: Counter[str] = Counter()  # orders by final status (set by check)
        self.faulty = False  # faults apply inside handler deliveries only
        self.racing = False

    # --- randomness and the trace --------------------------------------------------------
    def roll(self) -> float:
        return self.random.random()

    def note(self, text: str, *keys: str) -> None:
        self.steps.append(Step(len(self.steps) + 1, text, frozenset(k for k in keys if k)))

    # --- the run -----------------------------------------------------------------------------
    def run(self) -> Report:
        from moto import mock_aws

        from local import moto_patches, provision
        from local.bus import InProcessBus
        from notification import senders
        from payment import provider as payment_provider
        from shopstream import aws, transaction

        moto_patches.apply()
        started = time.perf_counter()
        sender = _CountingSender()
        original_provider, original_uuid4 = payment_provider.provider, uuid.uuid4
        # Ids decide partitions, so they come from the seed too: a seed replays exactly.
        ids = random.Random(f"ids-{self.seed}")
        uuid.uuid4 = lambda: uuid.UUID(int=ids.getrandbits(128), version=4)
        with mock_aws():
            queues = provision.create_aws_resources(aws.client, "eu-west-1")
            self.bus = InProcessBus(queue_urls=queues, seed=self.seed)
            self.publisher = _FlakyPublisher(self)
            payment_provider.provider = _ChaosProvider(self)
            senders.install(sender)
            transaction.set_commit_hooks(before=self._before_commit, after=self._after_commit)
            try:
                self._setup()
                self._chaos()
                self._drain()
                violations = check(self, sender)
            finally:
                transaction.set_commit_hooks()
                senders.install(None)
                payment_provider.provider = original_provider
                uuid.uuid4 = original_uuid4
        return Report(self.seed, violations, self.steps, Counter(), self.faults, time.perf_counter() - started)

    # --- phases ------------------------------------------------------------------------------
    def _setup(self) -> None:
        for n in range(self.random.randint(1, 2)):
            user = f"u{n}"
            self._call("user", "POST", "/users", user=user, body={"email": email_of(user), "name": name_of(user)})
            self.users.append(user)
        for n in range(self.random.randint(1, 2)):
            status, body = self._call("catalog", "POST", "/products", user=ADMIN, admin=True, body={
                "sku": f"SKU-{n}", "name": f"P{n}", "price": {"amount": self.random.randint(1, 50) * 100,
                                                            "currency": "EUR"}})
            assert status == 201, body
            self.products.append(body["productId"])
        self.bus.pump()
        for product in self.products:
            stock = self.random.randint(2, 9)
            status, body = self._call("inventory", "POST", f"/inventory/{product}/adjustments", user=ADMIN,
                                      admin=True, body={"delta": stock, "reason": "initial"})
            assert status == 200, body
        self.bus.pump()
        self.note(f"setup: users {self.users}, products {self.products}")
        self._script()

    def _script(self) -> None:
        """This seed's orders; the other commands are drawn as the schedule goes."""
        self.commands = [self._place for _ in range(self.random.randint(*self.order_range))]
        if self.roll() < 0.3:  # a customer asks to be erased, somewhere among the orders
            self.commands.insert(self.random.randint(0, len(self.commands)), self._erase)

    def _random_command(self) -> Callable[[], None]:
        menu = [self._cancel] * 3 + [self._dispatch] * 3 + [self._deliver] * 2 + [self._adjust]
        if self.roll() < 0.03:
            return self._sweep
        return self.random.choice(menu)

    def _chaos(self) -> None:
        """Rounds of commands and faulty steps, each round until the system is quiet again, so that
        later rounds act on confirmed and dispatched orders too."""
        for round_number in range(3):
            for _ in range(self.random.randint(1, 4)):
                self.commands.insert(self.random.randint(0, len(self.commands)), self._random_command())
            for tick in range(1500):
                if self.commands and self.roll() < 0.2:
                    self.commands.pop(0)()
                elif not self._bus_step() and not self.commands and tick > 5:
                    break
            self.note(f"end of round {round_number + 1}")
        while self.commands:  # a client does not give up on what it meant to do
            self.commands.pop(0)()

    def _drain(self) -> None:
        self.faulty = self.racing = False
        self.note("drain: no more faults")
        for _ in range(200):
            moved = sum(self.bus.relay_step(spec.name) for spec in _services())
            work = self.bus.pending()
            self.random.shuffle(work)
            delivered = sum(self.bus.deliver_step(s, h, p, context=_sim_context()) for s, h, p in work)
            if not moved and not delivered:
                return
        raise RuntimeError("the system did not settle")

    # --- bus steps ---------------------------------------------------------------------------
    def _bus_step(self) -> bool:
        """One step of the platform; False when there was nothing left to relay or deliver."""
        from local import naming
        from shopstream import transaction

        unrelayed = [spec.name for spec in _services()
                     if self.bus.relayed_at.get(spec.name) != transaction.commits[naming.table(spec.name)]]
        work = self.bus.pending()
        if not unrelayed and not work:
            return False
        roll = self.roll()
        if unrelayed and (roll < 0.3 or not work):
            service = self.random.choice(unrelayed)
            moved = self.bus.relay_step(service, self.publisher)
            self.note(f"relay {service}: {moved} stream records")
            return True
        if roll > 1 - self.chaos.replay:
            self._replay()
            return True
        spec, handler, partition = self.random.choice(work)
        times = 2 if self.roll() < self.chaos.duplicate_batch else 1
        size = self.random.randint(1, 4)
        records = self.bus.log[handler.topic][partition]
        cursor = self.bus.cursors[(spec.name, handler.name, partition)]
        batch = [r for r in records[cursor.next_offset:cursor.next_offset + size]
                 if _event_type(r) in handler.event_types or _event_type(r) is None]
        keys = {r.key for r in batch}  # what the handler takes (the rest it skips) is what the trace follows
        label = ", ".join(_describe(r) for r in batch) or "(only events it skips)"
        self.faulty = self.racing = True
        try:
            self.bus.deliver_step(spec, handler, partition, batch_size=size, times=times, context=_sim_context())
            outcome = f"-> next offset {cursor.next_offset}"
        except InjectedCrash:
            outcome = "-> crashed (the whole batch is retried)"
        finally:
            self.faulty = self.racing = False
        self.note(f"deliver {spec.name}.{handler.name} p{partition}{' twice' if times == 2 else ''}: {label} {outcome}",
                  *keys)
        return True

    def _replay(self) -> None:
        consumed = [(k, c) for k, c in self.bus.cursors.items() if c.next_offset > 0]
        if not consumed:
            return
        (service, handler, partition), cursor = self.random.choice(consumed)
        to = self.random.randint(0, cursor.next_offset - 1)
        forget = self.roll() < self.chaos.replay_forgets
        if forget:
            _forget_idempotency(service, handler)
        cursor.next_offset = to
        self.faults["replay"] += 1
        self.note(f"replay {service}.{handler} p{partition} from offset {to}"
                  f"{' with its idempotency records cleared' if forget else ''}")

    # --- commit hooks ------------------------------------------------------------------------
    def _before_commit(self, uow: Any) -> None:
        if not self.faulty:
            return
        roll = self.roll()
        if roll < self.chaos.fault_before_commit:
            self.faults["before-commit"] += 1
            raise InjectedFault("injected before the commit")
        if self.racing and self.commands and roll > 1 - self.chaos.race_in_commit:
            # A command lands between this handler's reads and its conditional write.
            command = self.commands.pop(0)
            self.faulty = self.racing = False
            try:
                self.note("  (the next command runs inside a handler, before its commit)")
                command()
            finally:
                self.faulty = self.racing = True

    def _after_commit(self, uow: Any) -> None:
        if not self.faulty:
            return
        roll = self.roll()
        if roll < self.chaos.crash_after_commit:
            self.faults["crash"] += 1
            raise InjectedCrash("crashed after the commit")
        if roll < self.chaos.crash_after_commit + self.chaos.fault_after_commit:
            self.faults["after-commit"] += 1
            raise InjectedFault("injected after the commit (the response was lost)")

    # --- commands ----------------------------------------------------------------------------
    def _call(self, service: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        return self.bus.call(service, method, path, **kwargs)

    def _place(self) -> None:
        customers = [u for u in self.users if u not in self.erased]
        if not customers:
            return
        user = self.random.choice(customers)
        lines = {p: self.random.randint(1, 3) for p in self.random.sample(self.products,
                                                                          self.random.randint(1, len(self.products)))}
        method = self.random.choice(ORDER_METHODS)
        status, body = self._call("order", "POST", "/orders", user=user, body={
            "items": [{"productId": p, "quantity": q} for p, q in lines.items()], "paymentMethod": method,
            "shippingAddress": ADDRESS})
        if status != 202:
            raise AssertionError(f"placing an order answered {status}: {body}")
        self.order_ids.append(body["orderId"])
        self.note(f"POST /orders {lines} {method} -> {body['orderId']}", body["orderId"])

    def _erase(self) -> None:
        customers = [u for u in self.users if u not in self.erased]
        if not customers:
            return
        user = self.random.choice(customers)
        status, body = self._call("user", "POST", f"/users/{user}/erasure", user=user)
        if status != 202:
            raise AssertionError(f"erasure answered {status}: {body}")
        self.erased.append(user)
        self.note(f"POST /users/{user}/erasure -> {status}", user)

    def _some_order(self) -> str | None:
        return self.random.choice(self.order_ids) if self.order_ids else None

    def _cancel(self) -> None:
        order_id = self._some_order()
        if order_id is None:
            return
        status, body = self._call("order", "GET", f"/orders/{order_id}", user=ADMIN, admin=True)
        owner = body["userId"]
        status, body = self._call("order", "POST", f"/orders/{order_id}/cancel", user=owner)
        if status not in (202, 409):
            raise AssertionError(f"cancel answered {status}: {body}")
        self.note(f"POST /orders/{order_id}/cancel -> {status}", order_id)

    def _shipment(self, action: str) -> None:
        order_id = self._some_order()
        if order_id is None:
            return
        status, body = self._call("shipping", "POST", f"/shipments/shp_{order_id}/{action}", user=ADMIN, admin=True)
        if status not in (200, 404, 409):
            raise AssertionError(f"{action} answered {status}: {body}")
        self.note(f"POST /shipments/shp_{order_id}/{action} -> {status}", order_id)

    def _dispatch(self) -> None:
        self._shipment("dispatch")

    def _deliver(self) -> None:
        self._shipment("deliver")

    def _adjust(self) -> None:
        product = self.random.choice(self.products)
        delta = self.random.choice((-2, -1, 1, 2, 3))
        status, body = self._call("inventory", "POST", f"/inventory/{product}/adjustments", user=ADMIN, admin=True,
                                  body={"delta": delta, "reason": "count"})
        if status not in (200, 409):
            raise AssertionError(f"adjustment answered {status}: {body}")
        self.note(f"POST /inventory/{product}/adjustments {delta:+d} -> {status}", product)

    def _sweep(self) -> None:
        later = datetime.now(UTC) + timedelta(hours=1)
        cancelled = self.bus.run_schedule("order", "sweep_timeouts", later)
        self.note(f"timeout sweeper (an hour later): {cancelled} cancelled")


class _ChaosProvider:
    """The payment simulator, timing out (after recording the charge) when the seed says so."""

    def __init__(self, simulation: Simulation):
        from payment.provider import SimulatedProvider

        self.simulation = simulation
        self.inner = SimulatedProvider(fault_rate=0.0)

    def _maybe_timeout(self, key: str) -> None:
        from payment.provider import ProviderTimeout

        if self.simulation.faulty and self.simulation.roll() < self.simulation.chaos.provider_timeout:
            self.simulation.faults["provider-timeout"] += 1
            raise ProviderTimeout(f"injected: no answer for {key}")

    def charge(self, **kwargs: Any) -> Any:
        result = self.inner.charge(**kwargs)
        self._maybe_timeout(kwargs["idempotency_key"])
        return result

    def refund(self, **kwargs: Any) -> Any:
        result = self.inner.refund(**kwargs)
        self._maybe_timeout(kwargs["idempotency_key"])
        return result


# --- reading the outcome ------------------------------------------------------------------------
def _services() -> tuple[Any, ...]:
    from shopstream import catalog

    return catalog.SERVICES


def _event_type(record: Any) -> str | None:
    return dict(record.headers).get("eventType", b"").decode() or None


def _describe(record: Any) -> str:
    return f"{_event_type(record) or '<raw>'}({record.key})"


def scan_table(service: str) -> list[dict[str, Any]]:
    from local import naming
    from shopstream import aws
    from shopstream.dynamo import from_attributes

    client, items, kwargs = aws.client("dynamodb"), [], {"TableName": naming.table(service)}
    while True:
        page = client.scan(**kwargs)
        items += [from_attributes(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def email_of(user: str) -> str:
    return f"{user}.mail@example.com"


def name_of(user: str) -> str:
    return f"Customer {user.upper()}"


def _orders() -> dict[str, dict[str, Any]]:
    return {i["order_id"]: i for i in scan_table("order") if i["sk"] == "STATE"}


def _forget_idempotency(service: str, handler: str) -> None:
    from local import naming
    from shopstream import aws

    client = aws.client("dynamodb")
    table = naming.idempotency_table(service)
    for item in client.scan(TableName=table)["Items"]:
        if item["id"]["S"].startswith(f"{service}.{handler}#"):
            client.delete_item(TableName=table, Key={"id": item["id"]})


def check(simulation: Simulation, sender: _CountingSender) -> list[Violation]:
    """Everything that must hold once the system has settled, whatever the schedule was."""
    out: list[Violation] = []

    def fail(what: str, *keys: str) -> None:
        out.append(Violation(what, frozenset(keys)))

    orders = _orders()
    payment_items = scan_table("payment")
    payments = {p["orderId"]: p for p in payment_items if p["sk"] == "PAYMENT"}
    ledger = {p["pk"].removeprefix("PROVIDER#"): p for p in payment_items if p["pk"].startswith("PROVIDER#")}
    inventory = scan_table("inventory")
    reservations = {r["orderId"]: r for r in inventory if r["sk"] == "RESERVATION"}
    counters = [s for s in inventory if s["sk"] == "SHARD"]  # a product's stock is split over counters
    stocks: dict[str, Counter[str]] = {}
    for counter in counters:
        stocks.setdefault(counter["productId"], Counter()).update(
            {level: int(counter[level]) for level in ("available", "reserved", "sold", "received")})
    shipping = scan_table("shipping")
    shipments = {s["orderId"]: s for s in shipping if s["sk"] == "SHIPMENT"}

    # every saga terminal
    for order_id in simulation.order_ids:
        if order_id not in orders:
            fail(f"{order_id}: accepted but never stored", order_id)
    for order_id, order in orders.items():
        if order["status"] == "PENDING":
            fail(f"{order_id}: still PENDING after the system settled", order_id)
        if order.get("cancellation_requested"):
            fail(f"{order_id}: a cancellation request was never answered", order_id)
        if order["status"] == "CANCELLED" and not order.get("cancellation_reason"):
            fail(f"{order_id}: cancelled without a reason", order_id)

    # money: what the provider holds equals what kept orders are worth, order by order
    held_total = owed_total = 0
    for order_id, order in orders.items():
        pid = f"pay_{order_id}"
        charged = ledger.get(pid, {}).get("succeeded", False)
        refunded = f"refund_{pid}" in ledger
        held = charged and not refunded
        kept = order["status"] in KEPT
        amount = order["total"]["amount"]
        held_total += amount if held else 0
        owed_total += amount if kept else 0
        if held != kept:
            fail(f"{order_id}: order {order['status']} but money {'held' if held else 'not held'} "
                 f"(charged={charged}, refunded={refunded})", order_id)
        if refunded and not charged:
            fail(f"{order_id}: refunded without a charge", order_id)
        payment = payments.get(order_id)
        status = payment["status"] if payment else None
        if kept and status != "CAPTURED":
            fail(f"{order_id}: kept order with payment {status}", order_id)
        if not kept and status not in ("CANCELLED", "FAILED", "REFUNDED"):
            fail(f"{order_id}: cancelled order with payment {status}", order_id)
        if refunded and not order.get("refunded"):
            fail(f"{order_id}: refunded but the order does not know", order_id)
    if held_total != owed_total:
        fail(f"money: provider holds {held_total}, kept orders are worth {owed_total}")

    # stock: nothing created or lost, nothing left reserved, shipped units stay sold
    sold_by_kept: Counter[str] = Counter()
    for order_id, order in orders.items():
        reservation = reservations.get(order_id)
        status = reservation["status"] if reservation else None
        if order["status"] in KEPT:
            for item in order["items"]:
                sold_by_kept[item["productId"]] += item["quantity"]
            if status != "COMMITTED":
                fail(f"{order_id}: kept order with reservation {status}", order_id)
        elif status in ("RESERVED", "COMMITTED"):
            fail(f"{order_id}: cancelled order still holds stock ({status})", order_id)
    for counter in counters:  # each on its own: what makes the sum impossible to oversell
        if counter["received"] != counter["available"] + counter["reserved"] + counter["sold"] or min(
                counter["available"], counter["reserved"], counter["sold"]) < 0:
            fail(f"{counter['productId']} counter {counter['shard']}: received {counter['received']}, available "
                 f"{counter['available']}, reserved {counter['reserved']}, sold {counter['sold']}",
                 counter["productId"])
    for product_id, stock in stocks.items():
        if stock["received"] != stock["available"] + stock["reserved"] + stock["sold"]:
            fail(f"{product_id}: received {stock['received']} != available {stock['available']} + reserved "
                 f"{stock['reserved']} + sold {stock['sold']}", product_id)
        if stock["reserved"] != 0 or stock["available"] < 0:
            fail(f"{product_id}: reserved {stock['reserved']}, available {stock['available']} after settling",
                 product_id)
        if stock["sold"] != sold_by_kept[product_id]:
            fail(f"{product_id}: sold {stock['sold']} but kept orders bought {sold_by_kept[product_id]}", product_id)

    # parcels: one per kept order, none dispatched for a cancelled one
    for order_id, order in orders.items():
        shipment = shipments.get(order_id)
        status = shipment["status"] if shipment else None
        if order["status"] in KEPT and status not in ("CREATED", "DISPATCHED", "DELIVERED"):
            fail(f"{order_id}: kept order with shipment {status}", order_id)
        if order["status"] == "CANCELLED" and status not in (None, "CANCELLED"):
            fail(f"{order_id}: cancelled order with a {status} parcel", order_id)
        if order["status"] in ("SHIPPED", "DELIVERED") and status not in ("DISPATCHED", "DELIVERED"):
            fail(f"{order_id}: order {order['status']} but parcel {status}", order_id)

    # availability shown by the catalog follows inventory
    for product in (i for i in scan_table("catalog") if i["sk"] == "PRODUCT"):
        held = stocks.get(product["productId"])
        shown = sum(int(units) for units in product.get("shardAvailable", {}).values())
        if held and shown != held["available"]:
            fail(f"{product['productId']}: catalog shows {shown} available, inventory has {held['available']}",
                 product["productId"])

    # e-mail: each message at most once, and every attempt closed
    messages = [m for m in scan_table("notification") if m["sk"] == "MESSAGE"]
    for message_id, count in sender.sent.items():
        if count > 1:
            fail(f"notification {message_id} sent {count} times")
    for message in messages:
        if message["status"] == "SENDING":
            fail(f"notification {message['notificationId']} never closed")
        if message["status"] == "SENT" and sender.sent[message["notificationId"]] != 1:
            fail(f"notification {message['notificationId']} recorded SENT but sent "
                 f"{sender.sent[message['notificationId']]} times")

    # the audit trail holds every event, and every cause of every event
    trail = {json.loads(i["envelope"])["eventId"]: json.loads(i["envelope"]) for i in scan_table("audit")
             if i["pk"].startswith("TRAIL#")}
    published = {}
    for topic in simulation.bus.log.values():
        for records in topic.values():
            for record in records:
                body = json.loads(record.value)
                published[body["eventId"]] = body
    for event_id, body in published.items():
        if event_id not in trail:
            fail(f"audit: {body['eventType']} {event_id} is not in the trail", body["data"].get("orderId", ""))
        cause = body.get("causationId")
        if cause and cause not in published:
            fail(f"audit: {body['eventType']} {event_id} names a cause that was never published",
                 body["data"].get("orderId", ""))

    # personal data: never in clear in a table or on a topic; nothing kept of an erased customer
    _check_personal_data(simulation, fail)

    # the event-sourced order state equals its projection
    from order import store as order_store
    from shopstream.config import override_settings

    with override_settings(simulation.bus.settings_for("order")):
        for order_id, projection in orders.items():
            rebuilt = order_store.rebuild(order_id)
            if (rebuilt.status, rebuilt.version) != (projection["status"], projection["version"]):
                fail(f"{order_id}: events fold to {rebuilt.status} v{rebuilt.version}, projection says "
                     f"{projection['status']} v{projection['version']}", order_id)
    simulation.outcome = Counter(o["status"] for o in orders.values())
    return out


def _check_personal_data(simulation: Simulation, fail: Callable[..., None]) -> None:
    from local import naming
    from shopstream import aws
    from shopstream.dynamo import from_attributes

    client = aws.client("dynamodb")
    clear = [text for user in simulation.users for text in (email_of(user), name_of(user))]
    for table in client.list_tables()["TableNames"]:
        for item in client.scan(TableName=table)["Items"]:
            text = json.dumps(from_attributes(item), default=repr)
            for value in clear:
                if value in text:
                    fail(f"{table}: {value!r} stored in clear ({item.get('pk', item.get('userId'))})")
    for topic in simulation.bus.log.values():
        for records in topic.values():
            for record in records:
                for value in clear:
                    if value.encode() in record.value:
                        fail(f"{record.topic}: {value!r} published in clear ({_describe(record)})")
    keys = {from_attributes(i)["userId"] for i in client.scan(TableName=naming.CUSTOMER_KEYS_TABLE)["Items"]}
    tables = {service: scan_table(service) for service in ("user", "order", "notification", "cart")}
    for user in simulation.erased:
        profile = next((i for i in tables["user"] if i["pk"] == f"USER#{user}"), {})
        if profile.get("status") != "ERASED" or {"email", "name"} & set(profile):
            fail(f"{user}: erased, but the profile is {profile.get('status')} with {sorted(profile)}", user)
        if user in keys:
            fail(f"{user}: erased, but their key is still in the key store", user)
        for service, pk in (("order", f"REPLICA#USER#{user}"), ("notification", f"CONTACT#{user}")):
            kept = next((i for i in tables[service] if i["pk"] == pk), None)
            if kept is None or not kept.get("erased") or set(kept) & {"email", "name", "status"}:
                fail(f"{user}: erased, but {service} keeps {kept}", user)
        carts = [i["cartId"] for i in tables["cart"] if i.get("sk") == "CART" and i.get("userId") == user]
        if carts:
            fail(f"{user}: erased, but their carts {carts} remain", user)
        erasures = [e for e in simulation.bus.events("user-events")
                    if e["eventType"] == "UserErased" and e["data"]["userId"] == user]
        if len({e["eventId"] for e in erasures}) != 1:
            fail(f"{user}: {len(erasures)} UserErased events", user)


# --- running many seeds -------------------------------------------------------------------------
def _prepare_environment() -> None:
    os.environ.update({"AWS_ACCESS_KEY_ID": "sim", "AWS_SECRET_ACCESS_KEY": "sim", "AWS_REGION": "eu-west-1",
                       "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                       "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
                       "POWERTOOLS_LOG_LEVEL": "CRITICAL"})
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    import logging

    logging.disable(logging.CRITICAL)  # the services log every injected fault; the report says what matters


def simulate(seed: int, chaos: Chaos | None = None) -> Report:
    from shopstream.config import reset_settings
    from shopstream.publisher import set_publisher

    reset_settings()
    set_publisher(None)
    simulation = Simulation(seed, chaos)
    report = simulation.run()
    report.orders = simulation.outcome
    report.erased = len(simulation.erased)
    return report


def print_report(report: Report, *, trace: bool = False, out: Any = sys.stdout) -> None:
    for violation in report.violations:
        print(f"seed {report.seed}: VIOLATION {violation.what}", file=out)
    if report.violations or trace:
        steps = report.steps if trace or not report.violations else report.trace_for(report.violations[0])
        print(f"seed {report.seed}: {'trace' if trace else 'minimal trace (steps touching it)'}:", file=out)
        for step in steps:
            print(f"  {step.number:4d}. {step.text}", file=out)
        print(f"replay exactly: make simulate SEED={report.seed}", file=out)


def shrink(seed: int, chaos: Chaos | None = None) -> tuple[Chaos, Report]:
    """The fewest kinds of fault with which the seed still fails: each kind is switched off in turn
    and stays off if the violation remains (the schedule's random draws stay the same)."""
    from dataclasses import fields, replace

    chaos = chaos or Chaos()
    report = simulate(seed, chaos)
    for name in (f.name for f in fields(Chaos)):
        if getattr(chaos, name) == 0:
            continue
        candidate = replace(chaos, **{name: 0.0})
        attempt = simulate(seed, candidate)
        if attempt.violations:
            chaos, report = candidate, attempt
    return chaos, report


def _run_seed(seed: int) -> Report:
    report = simulate(seed)
    if not report.violations:
        report.steps = []  # only a failing seed's trace travels back to the parent process
    return report


def run_seeds(seeds: list[int], jobs: int, on_report: Callable[[Report], None]) -> None:
    """Run seeds in ``jobs`` processes (each seed is independent and deterministic)."""
    if jobs <= 1:
        _prepare_environment()
        for seed in seeds:
            on_report(simulate(seed))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # a clean interpreter: no moto mock or caches inherited
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_prepare_environment) as pool:
        for report in pool.map(_run_seed, seeds, chunksize=4):
            on_report(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200, help="run seeds first..first+N-1")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--seed", type=int, help="run this one seed (and print its trace)")
    parser.add_argument("--trace", action="store_true", help="print every step, not only around violations")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: one per core)")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    started = time.perf_counter()
    totals: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    failed: list[int] = []
    erased = 0

    def on_report(report: Report) -> None:
        nonlocal erased
        erased += report.erased
        totals.update(report.orders)
        faults.update(report.faults)
        if report.violations and args.seed is not None and not args.trace:
            needed, report = shrink(report.seed)
            active = {k: v for k, v in vars(needed).items() if v}
            print(f"seed {report.seed}: still fails with only these faults on: {active}")
        if report.violations or args.trace or args.seed is not None:
            print_report(report, trace=args.trace)
        if report.violations:
            failed.append(report.seed)
        done = sum(totals.values()) and len(seeds) > 1
        if done and (seeds.index(report.seed) + 1) % 100 == 0:
            print(f"... seed {report.seed}: {len(failed)} with violations so far, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)

    run_seeds(seeds, 1 if len(seeds) == 1 else args.jobs, on_report)
    elapsed = time.perf_counter() - started
    print(f"{len(seeds)} seeds in {elapsed:.0f} s ({elapsed / len(seeds):.2f} s per seed, {args.jobs} processes): "
          f"{len(failed)} with violations{' ' + str(failed[:20]) if failed else ''}; "
          f"orders {dict(sorted(totals.items()))}; customers erased {erased}; "
          f"faults injected {dict(sorted(faults.items()))}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
