"""A seeded simulation of the whole system under the interleavings a deployment produces, including the
operator's recovery paths and every client path.

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
  idempotency record stays in progress until its Lambda timeout); a commit's answer lost (sent again with its
  ClientRequestToken, or every answer lost);
- in every other seed, the critical path's events published right after their commit (shopstream.direct), with
  a crash between the commit and the publish, the broker refusing, the delete after the publish lost (the relay
  publishes the event a second time), the relay holding direct items back through their grace (a logical clock);
- provider timeouts after an authorisation, a capture, a void or a refund was recorded;
- the bad day: a handler that fails every delivery for a while (its mapping gives the batches up into the
  failed-batch bucket), a broker that refuses every publish for a while (the relays give their batches
  up), a handler that refuses valid events as poison until it is fixed, records on a topic that no
  handler can take;
- the operator: redrives of every kind of dead letter (poison, a mapping's given-up batch, a relay's), at
  random points and after the topic's retention or the outbox's TTL passed; replays of a partition from
  an offset or from a time, with or without the idempotency records;
- API commands (place, with a cart or an Idempotency-Key; reuse of keys with the same body, another body,
  another route, after the key's window; cancel, dispatch, deliver, stock adjustments, the timeout
  sweeper; carts created, changed, checked out while they change; profile changes, deactivation, erasure
  of customers with and without a profile, while their orders are in flight) run between steps and also
  in the middle of a handler, between its reads and its commit.

Then it drains (no faults; the operator redrives what waits in the dead letters) and checks what must hold
whatever happened (local/simulation_checks.py): money conserved order by order and by amount, stock
conserved, every saga terminal, every notice sent once (never after its customer's erasure), the audit
chain closed, nothing lost on the recovery paths, checked-out carts closed, no personal data in clear
anywhere, nothing kept of an erased customer. A violation prints the seed and the steps that touched what
it is about.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import time_machine
from botocore.exceptions import ReadTimeoutError

from local import entry_points, moto_patches, naming, ops, provision
from local import simulation_ledger as ledgers
from local.bus import InProcessBus
from local.context import LocalLambdaContext
from local.simulation_checks import Violation, check, email_of, name_of, scan_table
from notification import senders
from payment import provider as payment_provider
from shopstream import aws, catalog, direct, failed_batches, names, transaction
from shopstream.batch import SeededInterleaving
from shopstream.config import reset_settings
from shopstream.dlq import SqsDeadLetterSink
from shopstream.inbound import PoisonRecord
from shopstream.observability import logger
from shopstream.outbox import outbox_record
from shopstream.publisher import PublishError, set_publisher
from shopstream.transaction import ACKNOWLEDGEMENT_RETRIES

# moto, and local.moto_server and local.moto_snapshot, which load it, are imported where a seed's world is made:
# `make simulate-summary` (--summarise) only reads a ledger and must not load them (~0.3 s).

ORDER_METHODS = ("pm_card_visa",) * 4 + ("pm_card_chargeDeclined", "pm_card_insufficientFunds")
ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}
ADMIN = "admin-sim"
GIVE_UP_AFTER = 3  # failed deliveries of one batch (or polls of one relay batch) before its mapping gives it up
OUTAGE_DELIVERIES = 12  # how many deliveries of a handler fail in a row during its outage
BROKER_OUTAGE_POLLS = 6  # how many relay polls in a row fail during a broker outage
INCIDENT_STEPS = 60  # bus steps during which a handler refuses valid events as poison
REGION = naming.REGION
LOG_EVERY = 8  # one seed in this many keeps every log line, to look for personal data in them (it costs time)
# One seed in this many runs the mappings as on-demand Kafka mappings do (dev's): no partial batch response, no
# give-up; the consumers fail a batch whole (local/bus.py, docs/decisions.md 2026-12-05).
WHOLE_BATCH_EVERY = 4
DIRECT_PUBLISH_EVERY = 2  # the odd seeds publish the critical path's events right after their commit
JUNK = ("empty_value", "not_json", "invalid_envelope", "unknown_event_type", "unsupported_version", "invalid_data",
        "wrong_topic", "nested_too_deep", "unstorable", "unbuildable")  # poison that no fix makes applicable


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
class Report:
    seed: int
    violations: list[Violation]
    steps: list[Step]
    orders: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    erased: int = 0  # customers erased during the schedule
    paths: Counter = field(default_factory=Counter)  # the operator's and clients' paths the schedule took
    digest: str = ""  # fingerprint(), taken before a passing seed's steps are dropped

    def fingerprint(self) -> str:
        """What the seed did and found (every step, fault, path, outcome and violation), hashed: the same
        wherever and however often the seed runs, so a replay or a ledger entry can be compared."""
        seen = {"steps": [s.text for s in self.steps], "faults": sorted(self.faults.items()),
                "paths": sorted(self.paths.items()), "orders": sorted(self.orders.items()), "erased": self.erased,
                "violations": [v.what for v in self.violations]}
        return hashlib.sha256(json.dumps(seen).encode()).hexdigest()[:16]

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
    # the bad day, and the operator (per bus step)
    handler_outage: float = 0.004
    broker_outage: float = 0.003
    incident: float = 0.003
    poison: float = 0.004
    redrive: float = 0.015
    retention: float = 0.004
    outbox_expiry: float = 0.004
    # a commit's answer lost (every commit; per attempt of a handler's), and direct publish (the odd seeds)
    commit_answer_lost: float = 0.03
    crash_before_publish: float = 0.05
    direct_publish_refused: float = 0.1
    delete_after_publish_lost: float = 0.1


def _sim_context() -> Any:
    """A Lambda context whose invocation is always about to time out: an idempotency record left in
    progress by a crash expires at once, as it would after the real function's timeout."""
    return LocalLambdaContext("simulated", timeout_seconds=0.001)


class _FlakyPublisher:
    """In-memory topic writes where a publish can fail, or succeed with its acknowledgement lost; during a
    broker outage every publish fails."""

    def __init__(self, simulation: Simulation):
        self.simulation = simulation
        self.records: list[Any] = []
        self.pending: list[Any] = []

    def publish(self, record: Any) -> None:
        self.pending.append(record)

    def deliver(self, records: Any, timeout: float) -> None:
        """A function's direct publish (shopstream.direct): the same faults, and now and then the broker refuses."""
        self.pending += records
        self.flush()

    def flush(self) -> None:
        failed: dict[str, str] = {}
        down = self.simulation.broker_down > 0
        directly = self.simulation.publishing_directly
        if (directly and self.simulation.faulty
                and self.simulation.roll() < self.simulation.chaos.direct_publish_refused):
            self.simulation.paths["direct publish refused by the broker"] += 1
            down = True
        for record in self.pending:
            roll = self.simulation.roll()
            if down or (self.simulation.faulty_publish and roll < self.simulation.chaos.publish_fails):
                failed[record.event_id] = "injected: not delivered"
                continue
            self.records.append(record)
            if self.simulation.faulty_publish and roll < (self.simulation.chaos.publish_fails
                                                          + self.simulation.chaos.publish_ack_lost):
                failed[record.event_id] = "injected: acknowledgement lost"
        self.pending = []
        if failed:
            self.simulation.faults["publish"] += len(failed)
            if directly:
                self.simulation.paths["direct: not acknowledged (the relay publishes)"] += 1
            raise PublishError(failed)


class _CountingSender:
    """The e-mail channel: always healthy; counts what it was handed, and when, in the simulation's clock."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.sent: Counter[str] = Counter()
        self.handed: list[tuple[str, str, int]] = []  # (message id, customer, clock)

    def send(self, *, message_id: str, to: str, subject: str, body: str) -> None:
        self.sent[message_id] += 1
        self.handed.append((message_id, self.simulation.customer_of(to), self.simulation.tick()))


class Simulation:
    def __init__(self, seed: int, chaos: Chaos | None = None, *, orders: tuple[int, int] = (2, 5)):
        self.seed = seed
        self.random = random.Random(seed)
        self.chaos = chaos or Chaos()
        self.order_range = orders
        self.steps: list[Step] = []
        self.faults: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.order_ids: list[str] = []
        self.products: list[str] = []
        self.users: list[str] = []  # every customer the simulation knows, with a profile or not
        self.registered: set[str] = set()  # ... of whom these created a profile
        self.deactivated: set[str] = set()
        self.erased: list[str] = []
        self.erased_at: dict[str, int] = {}
        self.emails: dict[str, list[str]] = {}  # every address a customer gave, oldest first
        self.names: dict[str, list[str]] = {}
        self.carts: dict[str, str] = {}  # cart id -> its owner
        self.keys: list[dict[str, Any]] = []  # Idempotency-Keys used: what was sent and what came back
        self.commands: list[Callable[[], None]] = []
        self.races: dict[str, list[Callable[[], None]]] = {}
        self.appended_at: dict[tuple[str, int], list[int]] = {}  # handler -> commands to run inside its next commit
        self.command_violations: list[tuple[str, tuple[str, ...]]] = []
        self.outcome: Counter[str] = Counter()  # orders by final status (set by check)
        self.faulty = False  # faults apply inside handler deliveries only
        # A batch that failed or crashed whole, by (service, handler, partition): its size, so that a retry can
        # deliver the same records again, as Lambda retries a failed batch (or a new batch size, as a poller that
        # gathered more records since would)
        self.failed_batch_sizes: dict[tuple[str, str, int], int] = {}
        self.racing = False
        self.crashes = True  # an operator's command is never crashed (see _redrive)
        self.faulty_publish = True
        self.clock = 0
        self.direct = seed % DIRECT_PUBLISH_EVERY == 1  # the critical path publishes right after its commits
        self.publishing_directly = False  # a function's direct publish is being flushed
        self._losing: tuple[Any, int] | None = None  # (transaction, answers still to lose)
        self._answers_lost: tuple[Any, int] | None = None  # (transaction, answers lost in a row by independent rolls)
        # the bad day
        self.outages: dict[str, int] = {}  # handler -> deliveries that still fail
        self.broker_down = 0  # relay polls that still fail
        self.incident: tuple[str, int] | None = None  # (handler, bus steps left) refusing valid events
        self.delivering: str | None = None  # the handler whose invocation is running
        # what the simulation observed of the platform, for the recovery checks
        self.failed_records: dict[tuple[str, str, int, int], str] = {}
        self.applied: set[tuple[str, str, int, int]] = set()
        self.committed: dict[str, tuple[str, str]] = {}  # eventId -> (type, service)
        self.interrupted_sends: set[str] = set()
        self.log_lines: list[str] = []
        self.letters: set[str] = set()  # the dead-letter queues that may hold something ("<service>.<owner>")
        self._dead_lettered_now: list[tuple[str, str, int, int]] = []
        self._target: Any = None
        self._restore: list[Callable[[], None]] = []

    # --- randomness, time and the trace -------------------------------------------------------
    def roll(self) -> float:
        return self.random.random()

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def note(self, text: str, *keys: str) -> None:
        self.steps.append(Step(len(self.steps) + 1, text, frozenset(k for k in keys if k)))

    def customer_of(self, address: str) -> str:
        return next((user for user, addresses in self.emails.items() if address in addresses), "")

    def personal_values(self) -> list[str]:
        return [v for values in (*self.emails.values(), *self.names.values()) for v in values]

    # --- the run -----------------------------------------------------------------------------
    def run(self, world: ProvisionedWorld | None = None) -> Report:
        """One seed, in ``world`` (provisioned once for many seeds, restored for this one) or in moto of its own."""
        moto_patches.apply()
        started = time.perf_counter()
        self.sender = _CountingSender(self)
        original_provider, original_uuid4 = payment_provider.provider, uuid.uuid4
        # Ids decide partitions, so they come from the seed too: a seed replays exactly.
        ids = random.Random(f"ids-{self.seed}")
        uuid.uuid4 = lambda: uuid.UUID(int=ids.getrandbits(128), version=4)
        with world.restored(ids) if world is not None else _own_world() as queues:
            whole_batch = self.seed % WHOLE_BATCH_EVERY == 1
            # A batch's keys in an order of their own seed: what key-parallel handlers may do on AWS.
            self.bus = InProcessBus(queue_urls=queues, seed=self.seed, give_up_after=GIVE_UP_AFTER,
                                    partial_batch_response=not whole_batch, direct_publish=self.direct,
                                    run_groups=SeededInterleaving(random.Random(f"interleave-{self.seed}")))
            if whole_batch:
                self.paths["whole-batch mappings"] += 1
            self.publisher = _FlakyPublisher(self)
            set_publisher(self.publisher)  # what the operator's relay redrive and the direct publishes use
            payment_provider.provider = _ChaosProvider(self)
            senders.install(self.sender)
            transaction.set_commit_hooks(before=self._before_commit, after=self._after_commit,
                                         acknowledged=self._acknowledged)
            transaction.add_commit_listener(self._committed)
            # The grace on the bus's clock (a step is a tick): a direct item is relayed as the steps go by.
            direct.set_clock(self.bus.now, sleep=lambda _seconds: None)
            direct.set_fault_hook(self._direct_fault)
            self._restore += [direct.set_clock, partial(direct.set_fault_hook, None)]
            if self.direct:
                self.paths["seeds publishing directly"] += 1
            self._observe()
            if self.seed % LOG_EVERY == 0:
                self._capture_logs()
            relayed = Counter(direct.relayed)
            try:
                self._setup()
                self._chaos()
                self._drain()
                violations = check(self)
                for what, count in (direct.relayed - relayed).items():
                    self.paths[f"relay, direct items: {what}"] += count
            finally:
                for restore in reversed(self._restore):
                    restore()
                transaction.remove_commit_listener(self._committed)
                transaction.set_commit_hooks()
                senders.install(None)
                set_publisher(None)
                payment_provider.provider = original_provider
                uuid.uuid4 = original_uuid4
        return Report(self.seed, violations, self.steps, Counter(), self.faults, time.perf_counter() - started)

    # --- what the simulation observes -----------------------------------------------------------
    def _observe(self) -> None:
        """Wrap every consumer (the bus and the operator's redrive both look them up by name) and the
        dead-letter sink, to know which records each invocation applied and which it dead-lettered."""
        for spec in catalog.SERVICES:
            if not spec.handlers:
                continue
            module = entry_points.module(spec.name, names.CONSUMERS_MODULE)
            for handler in spec.handlers:
                original = getattr(module, handler.entry)
                setattr(module, handler.entry, self._observed(f"{spec.name}.{handler.name}", original))
                self._restore.append(partial(setattr, module, handler.entry, original))
        send = SqsDeadLetterSink.send
        simulation = self

        def send_observed(sink: Any, message: dict[str, Any]) -> None:
            send(sink, message)
            key = (message["handler"], message["topic"], int(message["partition"]), int(message["offset"]))
            simulation.failed_records.setdefault(key, "poison")
            simulation._dead_lettered_now.append(key)
            simulation.letters.add(message["handler"])

        SqsDeadLetterSink.send = send_observed  # type: ignore[method-assign, assignment]
        self._restore.append(lambda: setattr(SqsDeadLetterSink, "send", send))

    def _observed(self, ref: str, consumer: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
            if self.outages.get(ref, 0) > 0:
                self.outages[ref] -= 1
                self.faults["outage"] += 1
                raise InjectedFault(f"{ref} is down")  # a function error: the whole batch fails
            records = [(r["topic"], int(r["partition"]), int(r["offset"])) for rs in event["records"].values()
                       for r in rs]
            self.delivering, self._dead_lettered_now = ref, []
            try:
                response = consumer(event, context)
            finally:
                self.delivering = None
            failed = {_failed_record(f["itemIdentifier"]) for f in response.get("batchItemFailures", [])}
            dead = {(t, p, o) for _, t, p, o in self._dead_lettered_now}
            self.applied.update((ref, *r) for r in records if r not in failed and r not in dead)
            return response

        return invoke

    def _capture_logs(self) -> None:
        """Every line the services log (INFO up) and libraries warn, kept as text for the personal-data check."""
        simulation, service_logger = self, logger()._logger

        class Lines(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                simulation.log_lines.append(json.dumps({**record.__dict__, "message": record.getMessage()},
                                                       default=str))

        handler, saved = Lines(level=logging.INFO), (service_logger.handlers, service_logger.propagate,
                                                     service_logger.level, logging.root.manager.disable)
        logging.disable(logging.NOTSET)
        service_logger.handlers, service_logger.propagate = [handler], False
        service_logger.setLevel(logging.INFO)
        logging.getLogger().addHandler(warnings := Lines(level=logging.WARNING))

        def restore() -> None:
            service_logger.handlers, service_logger.propagate = saved[0], saved[1]
            service_logger.setLevel(saved[2])
            logging.getLogger().removeHandler(warnings)
            logging.disable(saved[3])

        self._restore.append(restore)

    def _committed(self, uow: Any) -> None:
        for event in uow.events:
            self.committed[event.event_id] = (event.event_type, event.source.removesuffix("-service"))

    def _given_up(self) -> None:
        """The batches the mappings gave up since the last look: their records failed."""
        while self.bus.given_up:
            service, owner, record = self.bus.given_up.pop(0)
            self.letters.add(f"{service}.{owner}")
            for r in failed_batches.kafka_records(record):
                self.failed_records.setdefault((f"{service}.{owner}", r["topic"], r["partition"], r["offset"]),
                                               "given up")
            self.faults["given-up"] += 1
            self.note(f"  {service}.{owner}: its mapping gave a batch up ({failed_batches.named_count(record)} "
                      "records, kept in the failed-batch bucket)")

    def target(self) -> Any:
        """The operator's command line, against this process's moto (local/ops.py)."""
        if self._target is None:
            self._target = ops.Target("local", in_process=True)
        return self._target

    def waiting(self) -> dict[str, list[dict[str, Any]]]:
        """What each dead-letter queue that may hold something holds (decoded, as the console shows it)."""
        found = {queue: ops.dlq_peek(self.target(), queue) for queue in sorted(self.letters)}
        self.letters = {queue for queue, letters in found.items() if letters}
        return {queue: letters for queue, letters in found.items() if letters}

    def held(self) -> tuple[set[tuple[str, str, int, int]], set[str]]:
        """What the dead letters hold now: handlers' records (poison or stored), relays' events."""
        records: set[tuple[str, str, int, int]] = set()
        events: set[str] = set()
        for queue, letters in self.waiting().items():
            for entry in letters:
                body = entry["body"]
                if queue.endswith(f".{names.RELAY}"):
                    for r in failed_batches.stream_records(body):
                        event = outbox_record(r.get("dynamodb", {}).get("NewImage") or {})
                        if event is not None:
                            events.add(event.event_id)
                elif body.get("kind") == "poison":
                    records.add((queue, body["topic"], int(body["partition"]), int(body["offset"])))
                else:
                    records.update((queue, r["topic"], r["partition"], r["offset"])
                                   for r in failed_batches.kafka_records(body))
        return records, events

    # --- phases ------------------------------------------------------------------------------
    def _setup(self) -> None:
        for n in range(self.random.randint(1, 2)):
            self._register(f"u{n}")
        if self.roll() < 0.3:  # signed up (a token) but never created a profile
            self.users.append(f"u{len(self.users)}-noprofile")
        for n in range(self.random.randint(1, 2)):
            status, body = self._call("catalog", "POST", "/products", user=ADMIN, admin=True, body={
                "sku": f"SKU-{n}", "name": f"P{n}", "price": {"amount": self.random.randint(1, 50) * 100,
                                                            "currency": "EUR"}})
            assert status == 201, body
            self.products.append(body["productId"])
        self.bus.pump()
        for product in self.products:  # the stock arrives through a tool that retries with an Idempotency-Key
            body, path, key = {"delta": self.random.randint(2, 9), "reason": "initial"}, \
                f"/inventory/{product}/adjustments", f"k-stock-{product}"
            status, answer, _ = self.bus.request("inventory", "POST", path, user=ADMIN, admin=True, body=body,
                                                 headers={"idempotency-key": key})
            assert status == 200, answer
            self.keys.append({"key": key, "user": ADMIN, "service": "inventory", "path": path, "body": body,
                              "admin": True, "status": status})
        self.bus.pump()
        self.note(f"setup: users {self.users}, products {self.products}")
        self._script()

    def _register(self, user: str) -> None:
        self.emails.setdefault(user, []).append(email_of(user))
        self.names.setdefault(user, []).append(name_of(user))
        status, body = self._call("user", "POST", "/users", user=user,
                                  body={"email": email_of(user), "name": name_of(user)})
        assert status == 201, body
        self.users.append(user)
        self.registered.add(user)

    def _script(self) -> None:
        """This seed's orders; the other commands are drawn as the schedule goes."""
        self.commands = [self._place for _ in range(self.random.randint(*self.order_range))]
        if self.roll() < 0.5:  # a customer fills a cart first, and orders may check it out
            self.commands.insert(0, self._create_cart)
        if self.roll() < 0.3:  # a customer asks to be erased, somewhere among the orders
            self.commands.insert(self.random.randint(0, len(self.commands)), self._erase)

    def _random_command(self) -> Callable[[], None]:
        menu = ([self._cancel] * 3 + [self._dispatch] * 3 + [self._deliver] * 2 + [self._adjust] * 2
                + [self._create_cart] * 2 + [self._change_cart] * 2 + [self._reuse_key] * 2
                + [self._update_profile, self._deactivate])
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
                self._bad_day()
                if self.commands and self.roll() < 0.2:
                    self.commands.pop(0)()
                elif not self._bus_step() and not self.commands and tick > 5:
                    break
            self.note(f"end of round {round_number + 1}")
        self.commands += [command for aimed in self.races.values() for command in aimed]
        self.races = {}
        while self.commands:  # a client does not give up on what it meant to do
            self.commands.pop(0)()

    def _drain(self) -> None:
        """No more faults: the outages end, the incident's bug is fixed, and the operator redrives what the dead
        letters hold until nothing more can be applied (what stays is poison no handler can ever take)."""
        self.faulty = self.racing = self.faulty_publish = False
        self.outages, self.broker_down, self.incident = {}, 0, None
        self.note("drain: no more faults")
        for _ in range(20):
            self._settle()
            if not self._redrive_everything():
                return
        raise RuntimeError("the dead letters did not settle")

    def _settle(self) -> None:
        for _ in range(200):
            moved = sum(self.bus.relay_step(spec.name) for spec in _services())
            work = self.bus.pending()
            self.random.shuffle(work)
            delivered = sum(self.bus.deliver_step(s, h, p, context=_sim_context()) for s, h, p in work)
            self._given_up()
            if not moved and not delivered:
                return
        raise RuntimeError("the system did not settle")

    # --- bus steps ---------------------------------------------------------------------------
    def _bus_step(self) -> bool:
        """One step of the platform; False when there was nothing left to relay or deliver."""
        for (topic, partition) in [(t, p) for t, partitions in self.bus.log.items() for p in partitions]:
            self._append_times(topic, partition)
        unrelayed = [spec.name for spec in _services()
                     if self.bus.relayed_at.get(spec.name) != transaction.commits[naming.table(spec.name)]]
        work = self.bus.pending()
        if not unrelayed and not work:
            return False
        roll = self.roll()
        if unrelayed and (roll < 0.3 or not work):
            service = self.random.choice(unrelayed)
            moved = self.bus.relay_step(service, self.publisher)
            if self.broker_down > 0:
                self.broker_down -= 1
            self._given_up()
            self.note(f"relay {service}: {moved} stream records")
            return True
        if roll > 1 - self.chaos.replay:
            self._replay()
            return True
        spec, handler, partition = self.random.choice(work)
        times = 2 if self.roll() < self.chaos.duplicate_batch else 1
        where = (spec.name, handler.name, partition)
        again = self.failed_batch_sizes.get(where)
        size = again if again is not None and self.roll() < 0.5 else self.random.randint(1, 4)
        records = self.bus.log[handler.topic][partition]
        cursor = self.bus.cursors[(spec.name, handler.name, partition)]
        start = cursor.next_offset
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
        if cursor.next_offset == start:  # nothing taken: the batch failed or crashed whole
            self.failed_batch_sizes[where] = size
        else:
            self.failed_batch_sizes.pop(where, None)
        self.note(f"deliver {spec.name}.{handler.name} p{partition}{' twice' if times == 2 else ''}: {label} {outcome}",
                  *keys)
        self._given_up()
        return True

    def _replay(self) -> None:
        """The operator replays a partition into a handler from an offset, or from a time, as a fresh
        consumer group would (never before what the topic's retention already removed)."""
        consumed = [(k, c) for k, c in self.bus.cursors.items() if c.next_offset > 0]
        if not consumed:
            return
        (service, handler, partition), cursor = self.random.choice(consumed)
        topic = _services_handler(service, handler).topic
        earliest = self.bus.log_start.get((topic, partition), 0)
        if earliest >= cursor.next_offset:
            return
        if self.roll() < 0.5:
            to, how = self.random.randint(earliest, cursor.next_offset - 1), "offset"
        else:  # the first record at or after a moment between the oldest kept and the newest read
            # Times are the broker's append times, as Kafka's offsetsForTimes finds them: here the step at which a
            # record reached the log (a logical clock: wall-clock milliseconds would not replay exactly).
            stamps = self._append_times(topic, partition)[earliest:cursor.next_offset]
            moment = self.random.choice(stamps)
            to, how = earliest + next(i for i, s in enumerate(stamps) if s >= moment), f"time (step {moment})"
        forget = self.roll() < self.chaos.replay_forgets
        if forget:
            _forget_idempotency(service, handler)
        cursor.next_offset = to
        self.faults["replay"] += 1
        self.paths[f"replay from {how.split()[0]}"] += 1
        self.note(f"replay {service}.{handler} p{partition} from {how} (offset {to})"
                  f"{' with its idempotency records cleared' if forget else ''}")

    # --- the bad day, and the operator -----------------------------------------------------------
    def _bad_day(self) -> None:
        """Now and then: an outage, an incident, poison, the passing of time, or the operator at work."""
        if self.incident is not None:
            handler, left = self.incident
            self.incident = (handler, left - 1) if left > 1 else None
            if self.incident is None:
                self.note(f"incident over: {handler} is fixed (what it refused waits in its dead letters)")
        chaos, roll = self.chaos, self.roll()
        handlers = [f"{s.name}.{h.name}" for s in catalog.SERVICES for h in s.handlers]
        for threshold, action in ((chaos.handler_outage, self._handler_outage),
                                  (chaos.broker_outage, self._broker_outage),
                                  (chaos.incident, lambda: self._incident(handlers)),
                                  (chaos.poison, self._poison),
                                  (chaos.redrive, self._redrive),
                                  (chaos.retention, self._retention),
                                  (chaos.outbox_expiry, self._outbox_expiry)):
            if roll < threshold:
                action()
                return
            roll -= threshold

    def _append_times(self, topic: str, partition: int) -> list[int]:
        """The step at which each record of the partition reached the log (records seen first now get this step)."""
        times = self.appended_at.setdefault((topic, partition), [])
        times += [len(self.steps)] * (len(self.bus.log[topic][partition]) - len(times))
        return times

    def _handler_outage(self) -> None:
        spec = self.random.choice([s for s in catalog.SERVICES if s.handlers])
        handler = f"{spec.name}.{self.random.choice(spec.handlers).name}"
        self.outages[handler] = OUTAGE_DELIVERIES
        self.note(f"outage: {handler} fails its next {OUTAGE_DELIVERIES} deliveries")

    def _broker_outage(self) -> None:
        self.broker_down = BROKER_OUTAGE_POLLS
        self.faults["broker-outage"] += 1
        self.note(f"broker outage: the next {BROKER_OUTAGE_POLLS} relay polls fail")

    def _incident(self, handlers: list[str]) -> None:
        if self.incident is None:
            self.incident = (self.random.choice(handlers), INCIDENT_STEPS)
            self.faults["incident"] += 1
            self.note(f"incident: {self.incident[0]} refuses valid events as poison (a bug, until it is fixed)")

    def _poison(self) -> None:
        topic = self.random.choice(catalog.TOPICS).name
        value = self.random.choice([b"\xff\xfe not even text", b'{"not": "an envelope"}', b"42", b"[1, 2]"])
        partition, offset = self.bus.inject(topic, f"junk-{self.tick()}", value)
        self.faults["poison"] += 1
        self.note(f"poison on {topic}[{partition}]@{offset}: {value[:20]!r}")

    def _redrive(self, queue: str | None = None, *, faults: bool = True) -> bool:
        """The operator redrives one dead-letter queue (make ops ARGS="dlq redrive --handler <queue>"): through
        the handler as its mapping would, or the relay's events to the topics. Injected faults may hit the
        records (they are then kept); the command itself is never crashed. True if something was taken."""
        target = self.target()
        if queue is None:
            waiting = sorted(self.waiting())
            if not waiting:
                return False
            queue = self.random.choice(waiting)
        lines: list[str] = []
        self.faulty, self.racing, self.crashes = faults, False, False
        try:
            code = ops.dlq_redrive(target, queue, out=lines.append)
        finally:
            self.faulty, self.crashes = False, True
        self.bus.append_published(self.publisher)
        self.paths["redrive " + ("relay" if queue.endswith(".relay") else "handler")] += 1
        self.note(f"operator: dlq redrive --handler {queue} -> exit {code}: {lines[-1] if lines else ''}",
                  *(k for line in lines for k in line.split()))
        return any(line.startswith("redriven") for line in lines)

    def _redrive_everything(self) -> bool:
        """The drain's operator: every queue with something that can still be applied (not junk poison)."""
        progress = False
        for queue, letters in self.waiting().items():
            if any(entry["body"].get("kind") != "poison" or entry["body"]["reason"] not in JUNK for entry in letters):
                progress = self._redrive(queue, faults=False) or progress
        return progress

    def _retention(self) -> None:
        """A partition's oldest records pass the topic's retention (those every consumer has read): what a
        mapping gave up on stays in its bucket, replays start later."""
        candidates = [(t, p) for t, partitions in self.bus.log.items() for p, records in partitions.items() if records]
        if not candidates:
            return
        topic, partition = self.random.choice(candidates)
        read = [c.next_offset for (s, h, p), c in self.bus.cursors.items()
                if p == partition and _services_handler(s, h).topic == topic]
        start = min(read) if read else 0
        if start > self.bus.log_start.get((topic, partition), 0):
            self.bus.log_start[(topic, partition)] = start
            self.paths["retention passed"] += 1
            self.note(f"retention: {topic}[{partition}] keeps offsets {start} on")

    def _outbox_expiry(self) -> None:
        """A service's outbox items pass their TTL (those its stream has passed): a relay batch given up before
        is still redriven from what its mapping kept."""
        service = self.random.choice([s.name for s in _services() if s.publishes])
        if self.bus.relayed_at.get(service) != transaction.commits[naming.table(service)]:
            return
        client, expired = aws.client("dynamodb"), 0
        for item in scan_table(service):
            if item["pk"].startswith("OUTBOX#"):
                client.delete_item(TableName=naming.table(service), Key={"pk": {"S": item["pk"]},
                                                                         "sk": {"S": item["sk"]}})
                expired += 1
        if expired:
            self.paths["outbox TTL passed"] += 1
        self.note(f"outbox TTL: {expired} outbox item(s) of {service} expired")

    # --- commit hooks ------------------------------------------------------------------------
    def _before_commit(self, uow: Any) -> None:
        if not self.faulty:
            return
        if self.incident is not None and self.delivering == self.incident[0] and self.roll() < 0.5:
            self.faults["refused"] += 1
            raise PoisonRecord("handler_refused", "incident: a bug refuses a valid event")
        roll = self.roll()
        if roll < self.chaos.fault_before_commit:
            self.faults["before-commit"] += 1
            raise InjectedFault("injected before the commit")
        aimed = self.races.get(self.delivering or "")
        if self.racing and (aimed or self.commands) and (aimed or roll > 1 - self.chaos.race_in_commit):
            # A command lands between this handler's reads and its conditional write.
            command = aimed.pop(0) if aimed else self.commands.pop(0)
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
        crash = self.crashes and roll < self.chaos.crash_after_commit
        if crash or roll < self.chaos.crash_after_commit + self.chaos.fault_after_commit:
            # A notice recorded as SENDING whose attempt dies here is never handed over (at most once).
            self.interrupted_sends.update(_sending(uow))
        if crash:
            self.faults["crash"] += 1
            raise InjectedCrash("crashed after the commit")
        if roll < self.chaos.crash_after_commit + self.chaos.fault_after_commit:
            self.faults["after-commit"] += 1
            raise InjectedFault("injected after the commit (the response was lost)")

    def _acknowledged(self, uow: Any) -> None:
        """A transaction's answer lost after it was written: sent again with its token (DynamoDB answers success,
        local/moto_patches.py), or now and then every answer lost, so the function fails after committing and
        its events wait for the relay."""
        if self._losing is not None and self._losing[0] is uow:
            left = self._losing[1] - 1
            self._losing = (uow, left) if left else None
            raise ReadTimeoutError(endpoint_url="injected: the answer was lost again")
        if not self.faulty or self.roll() >= self.chaos.commit_answer_lost:
            self._answers_lost = None
            return
        self.faults["answer-lost"] += 1
        in_a_row = self._answers_lost[1] + 1 if self._answers_lost and self._answers_lost[0] is uow else 1
        self._answers_lost = (uow, in_a_row)
        if self.roll() < 0.3:
            self._losing = (uow, ACKNOWLEDGEMENT_RETRIES)
            self._gave_up_answers(uow)
        elif in_a_row > ACKNOWLEDGEMENT_RETRIES:  # independent losses used up the retries, as every answer lost would
            self._gave_up_answers(uow)
        else:
            self.paths["commit answer lost (sent again with its token)"] += 1
        raise ReadTimeoutError(endpoint_url="injected: the answer was lost")

    def _gave_up_answers(self, uow: Any) -> None:
        """The transaction's last answer is lost: the function fails after committing."""
        self._committed(uow)  # written, though the function never hears it
        self.interrupted_sends.update(_sending(uow))  # a notice recorded SENDING is never handed over
        self.paths["commit answer lost every time (the relay publishes)"] += 1

    def _direct_fault(self, stage: str) -> None:
        """Faults of a direct publish (shopstream.direct): at "publish" the function may crash between its commit
        and the publish; at "delete" (the broker acknowledged) the delete may be lost, or the function crash."""
        self.publishing_directly = stage == "publish"
        if stage == "publish":
            self.paths["direct publishes"] += 1
            if self.faulty and self.crashes and self.roll() < self.chaos.crash_before_publish:
                self.publishing_directly = False
                self.faults["crash-before-publish"] += 1
                self.paths["direct: crash between commit and publish"] += 1
                raise InjectedCrash("crashed after the commit, before publishing its events")
        elif stage == "delete" and self.faulty and self.roll() < self.chaos.delete_after_publish_lost:
            self.faults["delete-lost"] += 1
            self.paths["direct: published, its delete lost (published again by the relay)"] += 1
            if self.crashes and self.roll() < 0.5:
                raise InjectedCrash("crashed after publishing, before deleting the outbox items")
            raise InjectedFault("injected: the outbox items' delete failed")

    # --- commands ----------------------------------------------------------------------------
    def _call(self, service: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        return self.bus.call(service, method, path, **kwargs)

    def _expect(self, what: str, status: int, allowed: tuple[int, ...], body: Any, *keys: str) -> bool:
        """A client's view: an answer outside what the API promises for this call is a violation."""
        if status not in allowed:
            self.command_violations.append((f"{what} answered {status}, expected one of {allowed}: {body}", keys))
            return False
        return True

    def _customers(self, *, active: bool = True) -> list[str]:
        return [u for u in self.users if u in self.registered and u not in self.erased
                and (not active or u not in self.deactivated)]

    def _place(self) -> None:
        customers = self._customers()
        if not customers:
            return
        user = self.random.choice(customers)
        lines = {p: self.random.randint(1, 3) for p in self.random.sample(self.products,
                                                                          self.random.randint(1, len(self.products)))}
        method = self.random.choice(ORDER_METHODS)
        body: dict[str, Any] = {"items": [{"productId": p, "quantity": q} for p, q in lines.items()],
                                "paymentMethod": method, "shippingAddress": ADDRESS}
        carts = [c for c, owner in self.carts.items() if owner == user]
        if carts and self.roll() < 0.5:  # checked out from a cart, which may be changing meanwhile
            body["cartId"] = self.random.choice(carts)
            self.paths["checkout from a cart"] += 1
            change = partial(self._change_cart, body["cartId"])
            if self.roll() < 0.5:  # the customer changes the cart while the checkout closes it
                self.races.setdefault("cart.order-checkout", []).append(change)
            else:
                self.commands.insert(0, change)
        key = f"k-{self.tick()}" if self.roll() < 0.4 else None
        status, answer, headers = self.bus.request("order", "POST", "/orders", user=user, body=body,
                                                   headers={"idempotency-key": key} if key else None)
        if not self._expect("POST /orders", status, (202,), answer, user):
            return
        if key:
            self.keys.append({"key": key, "user": user, "service": "order", "path": "/orders", "body": body,
                              "id": answer["orderId"], "field": "orderId", "status": status})
        self.order_ids.append(answer["orderId"])
        self.note(f"POST /orders {lines} {method}{' cart ' + body['cartId'] if 'cartId' in body else ''}"
                  f"{' key ' + key if key else ''} -> {answer['orderId']}", answer["orderId"], user,
                  body.get("cartId", ""))
        if self.roll() < 0.1:  # the customer changes their mind at once: often while the payment is authorised
            self.commands.insert(0, partial(self._cancel, answer["orderId"]))
            self.paths["cancel right after placing"] += 1

    def _erase(self, user: str | None = None) -> None:
        customers = [u for u in self.users if u not in self.erased]
        if not customers:
            return
        user = user if user in customers else self.random.choice(customers)
        by_admin = self.roll() < 0.3
        status, body = self._call("user", "POST", f"/users/{user}/erasure", user=ADMIN if by_admin else user,
                                  admin=by_admin)
        if not self._expect(f"POST /users/{user}/erasure", status, (202,), body, user):
            return
        self.erased.append(user)
        self.erased_at[user] = self.tick()
        self.paths["erasure" + ("" if user in self.registered else " without a profile")] += 1
        self.note(f"POST /users/{user}/erasure{' (admin)' if by_admin else ''}"
                  f"{'' if user in self.registered else ' (no profile)'} -> {status}", user)

    def _some_order(self) -> str | None:
        return self.random.choice(self.order_ids) if self.order_ids else None

    def _cancel(self, order_id: str | None = None) -> None:
        order_id = order_id or self._some_order()
        if order_id is None:
            return
        status, body = self._call("order", "GET", f"/orders/{order_id}", user=ADMIN, admin=True)
        owner = body["userId"]
        status, body = self._call("order", "POST", f"/orders/{order_id}/cancel", user=owner)
        self._expect(f"POST /orders/{order_id}/cancel", status, (202, 409), body, order_id)
        self.note(f"POST /orders/{order_id}/cancel -> {status}", order_id)

    def _shipment(self, action: str) -> None:
        order_id = self._some_order()
        if order_id is None:
            return
        status, body = self._call("shipping", "POST", f"/shipments/shp_{order_id}/{action}", user=ADMIN, admin=True)
        self._expect(f"{action} of shp_{order_id}", status, (200, 404, 409), body, order_id)
        self.note(f"POST /shipments/shp_{order_id}/{action} -> {status}", order_id)

    def _dispatch(self) -> None:
        self._shipment("dispatch")

    def _deliver(self) -> None:
        self._shipment("deliver")

    def _adjust(self) -> None:
        product = self.random.choice(self.products)
        delta = self.random.choice((-2, -1, 1, 2, 3))
        key = f"k-{self.tick()}" if self.roll() < 0.4 else None
        body = {"delta": delta, "reason": "count"}
        path = f"/inventory/{product}/adjustments"
        status, answer, _ = self.bus.request("inventory", "POST", path, user=ADMIN, admin=True, body=body,
                                             headers={"idempotency-key": key} if key else None)
        if self._expect(f"adjusting {product}", status, (200, 409), answer, product) and key and status == 200:
            self.keys.append({"key": key, "user": ADMIN, "service": "inventory", "path": path, "body": body,
                              "admin": True, "status": status})
        self.note(f"POST {path} {delta:+d}{' key ' + key if key else ''} -> {status}", product)

    def _sweep(self) -> None:
        later = datetime.now(UTC) + timedelta(hours=1)
        cancelled = self.bus.run_schedule("order", "sweep_timeouts", later)
        self.note(f"timeout sweeper (an hour later): {cancelled} cancelled")

    # --- carts, profiles, keys ---------------------------------------------------------------------
    def _create_cart(self) -> None:
        customers = self._customers()
        if not customers:
            return
        user = self.random.choice(customers)
        items = [{"productId": p, "quantity": self.random.randint(1, 2)}
                 for p in self.random.sample(self.products, self.random.randint(1, len(self.products)))]
        key = f"k-{self.tick()}" if self.roll() < 0.4 else None
        status, answer, _ = self.bus.request("cart", "POST", "/carts", user=user, body={"items": items},
                                             headers={"idempotency-key": key} if key else None)
        if not self._expect("POST /carts", status, (201, 422), answer, user) or status != 201:
            return
        self.carts[answer["cartId"]] = user
        self.paths["cart created"] += 1
        if key:
            self.keys.append({"key": key, "user": user, "service": "cart", "path": "/carts",
                              "body": {"items": items}, "id": answer["cartId"], "field": "cartId", "status": status})
        self.note(f"POST /carts {items}{' key ' + key if key else ''} -> {answer['cartId']}", answer["cartId"], user)

    def _change_cart(self, cart_id: str | None = None) -> None:
        if cart_id is None:
            if not self.carts:
                return
            cart_id = self.random.choice(sorted(self.carts))
        user = self.carts[cart_id]
        items = [{"productId": p, "quantity": self.random.randint(1, 3)}
                 for p in self.random.sample(self.products, self.random.randint(1, len(self.products)))]
        status, body = self._call("cart", "PUT", f"/carts/{cart_id}/items", user=user, body={"items": items})
        # closed meanwhile (409), gone with its erased owner (404)
        self._expect(f"PUT /carts/{cart_id}/items", status, (200, 404, 409), body, cart_id)
        self.paths["cart changed"] += 1
        self.note(f"PUT /carts/{cart_id}/items {items} -> {status}", cart_id, user)

    def _update_profile(self) -> None:
        customers = self._customers()
        if not customers:
            return
        user = self.random.choice(customers)
        generation = len(self.emails[user])
        email, name = email_of(user, generation), name_of(user, generation)
        self.emails[user].append(email)
        self.names[user].append(name)
        status, body = self._call("user", "PATCH", f"/users/{user}", user=user, body={"email": email, "name": name})
        self._expect(f"PATCH /users/{user}", status, (200, 409), body, user)
        self.paths["profile changed"] += 1
        self.note(f"PATCH /users/{user} -> {status}", user)

    def _deactivate(self) -> None:
        customers = self._customers()
        if len(customers) < 2:  # keep someone who can still order
            return
        user = self.random.choice(customers)
        status, body = self._call("user", "POST", f"/users/{user}/deactivate", user=user)
        if self._expect(f"POST /users/{user}/deactivate", status, (200, 409), body, user) and status == 200:
            self.deactivated.add(user)
            self.paths["deactivation"] += 1
        self.note(f"POST /users/{user}/deactivate -> {status}", user)

    def _reuse_key(self) -> None:
        """A client sends an Idempotency-Key again: the same request (a retry; after the key's 24 hours too,
        simulated by its record's expiry) finds what it created, marked as a replay; another body or another
        route under it is a 422, at any age; nothing is created twice."""
        if not self.keys:
            return
        kind = self.random.choice(("same", "same", "other body", "other route"))
        # A key is bound within its service (each keeps its own bindings): the other route of a key is another
        # product's adjustment, so the keys of adjustments are the ones sent to another route.
        rerouted = [k for k in self.keys if k["service"] == "inventory"] if len(self.products) > 1 else []
        used = self.random.choice(rerouted if kind == "other route" and rerouted else self.keys)
        late = self.roll() < 0.4
        if late:
            _expire_key_records(used["service"])
        service, path, body = used["service"], used["path"], used["body"]
        if kind == "other route" and used["service"] == "inventory" and len(self.products) > 1:
            path = self.random.choice([f"/inventory/{p}/adjustments" for p in self.products
                                       if f"/inventory/{p}/" not in path])
        elif kind != "same":
            kind, body = "other body", _another_body(body)
        user, admin = used["user"], bool(used.get("admin"))
        if user in self.erased or (service == "order" and user in self.deactivated):
            return  # refused for that (the account), before the key is looked at
        status, answer, headers = self.bus.request(service, "POST", path, user=user, admin=admin, body=body,
                                                   headers={"idempotency-key": used["key"]})
        what = f"{used['key']} reused ({kind}{', after its window' if late else ''}) on POST {path}"
        keys = (used.get("id") or "", user)
        if kind == "same":
            if self._expect(what, status, (used["status"],), answer, *keys):
                if headers.get("Idempotent-Replayed") != "true":
                    self.command_violations.append((f"{what}: not marked as a replay", keys))
                if used.get("field") and answer.get(used["field"]) != used["id"]:
                    self.command_violations.append((f"{what}: answered {answer.get(used['field'])}, not "
                                                    f"{used['id']}", keys))
        else:
            self._expect(what, status, (422,), answer, *keys)
        self.paths[f"key reused: {kind}{' after its window' if late else ''}"] += 1
        self.note(f"{what} -> {status}", *keys)


class _ChaosProvider:
    """The payment simulator, timing out (after recording what it did) when the seed says so."""

    def __init__(self, simulation: Simulation):
        self.simulation = simulation
        self.inner = payment_provider.SimulatedProvider(fault_rate=0.0)

    def _answer(self, call: str, result: Any, key: str) -> Any:
        if not result.succeeded:
            self.simulation.paths[f"provider: {call} declined ({result.decline_code})"] += 1
        if self.simulation.faulty and self.simulation.roll() < self.simulation.chaos.provider_timeout:
            self.simulation.faults["provider-timeout"] += 1
            self.simulation.paths[f"provider: timeout after the {call} was recorded"] += 1
            raise payment_provider.ProviderTimeout(f"injected: no answer for {key}")
        return result

    def authorise(self, **kwargs: Any) -> Any:
        return self._answer("authorisation", self.inner.authorise(**kwargs), kwargs["idempotency_key"])

    def capture(self, **kwargs: Any) -> Any:
        return self._answer("capture", self.inner.capture(**kwargs), kwargs["idempotency_key"])

    def void(self, **kwargs: Any) -> Any:
        return self._answer("void", self.inner.void(**kwargs), kwargs["idempotency_key"])

    def refund(self, **kwargs: Any) -> Any:
        return self._answer("refund", self.inner.refund(**kwargs), kwargs["idempotency_key"])


# --- helpers ------------------------------------------------------------------------------------
def _services() -> tuple[Any, ...]:
    return catalog.SERVICES


def _services_handler(service: str, handler: str) -> Any:
    return catalog.service(service).handler(handler)


def _event_type(record: Any) -> str | None:
    return dict(record.headers).get("eventType", b"").decode() or None


def _describe(record: Any) -> str:
    return f"{_event_type(record) or '<raw>'}({record.key})"


def _failed_record(identifier: dict[str, Any]) -> tuple[str, int, int]:
    """(topic, partition, offset) of a Kafka batch item failure (``{"partition": "<topic>-<p>", "offset": n}``)."""
    topic, _, partition = str(identifier["partition"]).rpartition("-")
    return topic, int(partition), int(identifier["offset"])


def _sending(uow: Any) -> list[str]:
    """The notices a transaction recorded as SENDING (about to be handed to the channel). None: a single-item
    update (transaction.update_item), which records no notice."""
    out: list[str] = []
    for action in uow.actions if uow is not None else ():
        item = action.get("Put", {}).get("Item", {})
        if item.get("sk", {}).get("S") == "MESSAGE" and item.get("status", {}).get("S") == "SENDING":
            out.append(item["notificationId"]["S"])
    return out


def _another_body(body: dict[str, Any]) -> dict[str, Any]:
    if "delta" in body:
        return {**body, "delta": body["delta"] + 1}
    changed = json.loads(json.dumps(body))
    changed["items"][0]["quantity"] = changed["items"][0]["quantity"] % 3 + 1
    return changed


def _forget_idempotency(service: str, handler: str) -> None:
    _expire(service, lambda key: key.startswith(f"{service}.{handler}#"))


def _expire_key_records(service: str) -> None:
    """Every Idempotency-Key record of the service's API passes its 24-hour window."""
    _expire(service, lambda key: key.startswith(f"{service}.api"))


def _expire(service: str, which: Callable[[str], bool]) -> None:
    client = aws.client("dynamodb")
    table = naming.idempotency_table(service)
    for item in client.scan(TableName=table)["Items"]:
        if which(item["id"]["S"]):
            client.delete_item(TableName=table, Key={"id": item["id"]})


# --- running many seeds -------------------------------------------------------------------------
def _prepare_environment() -> None:
    os.environ.update({"AWS_ACCESS_KEY_ID": "sim", "AWS_SECRET_ACCESS_KEY": "sim", "AWS_REGION": "eu-west-1",
                       "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                       "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
                       "POWERTOOLS_LOG_LEVEL": "CRITICAL"})
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    logging.disable(logging.CRITICAL)  # the services log every injected fault; the report says what matters


@contextmanager
def _own_world() -> Iterator[dict[str, str]]:
    """moto of the seed's own, provisioned from nothing; the queue URLs by name."""
    from moto import mock_aws

    with mock_aws():
        yield provision.create_aws_resources(aws.client, REGION)


class ProvisionedWorld:
    """A process's moto for many seeds, made cheaper per seed where nothing a seed can observe changes:

    - started once with every table, queue, bucket and key provisioned, and put back to exactly that state
      before each seed (local/moto_snapshot.py): provisioning through the API took a sixth of a seed;
    - AWS clients that do not compute signatures (local.moto_server.unsigned_clients): a sixth of a simple
      call's time;
    - after the first seed, everything loaded so far out of the garbage collector's sight, and collections
      rarer (as local/runtime.py does).

    Each botocore call draws its invocation id from uuid.uuid4, which a seed takes from its own generator
    (run), so a seed that provisions its own moto has drawn that many ids before its first command:
    ``restored`` draws as many, and a seed's schedule is the same either way
    (tests/integration/test_simulation.py compares them)."""

    def __init__(self) -> None:
        from moto import mock_aws

        from local.moto_server import install_unsigned_clients
        from local.moto_snapshot import Snapshot

        moto_patches.apply()
        install_unsigned_clients()
        self._collector: tuple[int, int, int] | None = None  # the thresholds before the first seed froze the rest
        self._mock = mock_aws()
        self._mock.start()
        draws, real = 0, uuid.uuid4

        def counted() -> uuid.UUID:
            nonlocal draws
            draws += 1
            return real()

        uuid.uuid4 = counted
        try:
            self.queues = provision.create_aws_resources(aws.client, REGION)
            self._provisioned = Snapshot()
        except BaseException:
            self.close()
            raise
        finally:
            uuid.uuid4 = real
        self.draws = draws

    @contextmanager
    def restored(self, ids: random.Random) -> Iterator[dict[str, str]]:
        self._provisioned.restore()
        for _ in range(self.draws):
            ids.getrandbits(128)
        yield self.queues
        if self._collector is None:  # every library, model and client a seed uses is loaded by now
            gc.collect()
            gc.freeze()
            self._collector = gc.get_threshold()
            gc.set_threshold(50_000, 20, 100)

    def close(self) -> None:
        from local.moto_server import remove_unsigned_clients

        self._mock.stop()
        remove_unsigned_clients()
        if self._collector is not None:
            gc.unfreeze()
            gc.set_threshold(*self._collector)


SIMULATED_EPOCH = datetime(2030, 1, 1, tzinfo=UTC)  # after any world's provisioning: a seed's time moves forward


def start_of(seed: int) -> datetime:
    """The wall-clock instant a seed starts at: its own minute of a day, whenever and wherever it runs. Event times,
    analytics' windows, TTLs and dates follow the wall clock: without this a seed's outcome (and fingerprint) moved
    with the time of day it ran at. The clock then runs at real speed; a seed starts on a whole minute and lasts
    seconds, so the minute boundaries it sees do not depend on the machine's speed."""
    return SIMULATED_EPOCH + timedelta(minutes=seed % (24 * 60))


def simulate(seed: int, chaos: Chaos | None = None, world: ProvisionedWorld | None = None) -> Report:
    """One seed, in ``world`` or (without one) in moto of its own, at its own instant (``start_of``)."""
    reset_settings()
    set_publisher(None)
    simulation = Simulation(seed, chaos)
    with time_machine.travel(start_of(seed), tick=True):
        report = simulation.run(world)
    report.orders = simulation.outcome
    report.erased = len(simulation.erased)
    report.paths = simulation.paths
    report.digest = report.fingerprint()
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


_world: ProvisionedWorld | None = None  # a worker process's, made at its first seed


def _run_seed(seed: int) -> Report:
    global _world
    if _world is None:
        _world = ProvisionedWorld()
    report = simulate(seed, world=_world)
    if not report.violations:
        report.steps = []  # only a failing seed's trace travels back to the parent process
    return report


def run_seeds(seeds: list[int], jobs: int, on_report: Callable[[Report], None]) -> None:
    """Run seeds in ``jobs`` processes (each seed is independent and deterministic), each process provisioning
    its moto once."""
    if jobs <= 1:
        _prepare_environment()
        world = ProvisionedWorld()
        try:
            for seed in seeds:
                on_report(simulate(seed, world=world))
        finally:
            world.close()
        return
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no moto mock or caches inherited
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_prepare_environment) as pool:
        try:
            # One seed at a time (its report is small, a seed takes a second): a run stopped mid-way has
            # reported every seed but those its processes were running.
            for report in pool.map(_run_seed, seeds):
                on_report(report)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # not the thousands of seeds still queued
            raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200, help="run seeds first..first+N-1")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--seed", type=int, help="run this one seed (and print its trace)")
    parser.add_argument("--trace", action="store_true", help="print every step, not only around violations")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: one per core)")
    parser.add_argument("--ledger", type=Path, help="write a line per finished seed to this file and run only the "
                        "seeds it lacks: a long run can stop and carry on (local/simulation_ledger.py)")
    parser.add_argument("--summarise", type=Path, metavar="LEDGER", help="print what a ledger holds and exit: "
                        "0 every seed done and none failed, 1 violations, 3 seeds missing")
    return parser


@dataclass
class _Tally:
    """What the seeds of a run reported, added up."""

    started: float = field(default_factory=time.perf_counter)
    totals: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    failed: list[int] = field(default_factory=list)
    erased: int = 0
    finished: int = 0

    def add(self, report: Report) -> None:
        self.finished += 1
        self.erased += report.erased
        self.totals.update(report.orders)
        self.faults.update(report.faults)
        self.paths.update(report.paths)
        if report.violations:
            self.failed.append(report.seed)

    def summary(self, seeds: int, jobs: int) -> str:
        elapsed = time.perf_counter() - self.started
        return (f"{seeds} seeds in {elapsed:.0f} s ({elapsed / seeds:.2f} s per seed, {jobs} processes): "
                f"{len(self.failed)} with violations{' ' + str(self.failed[:20]) if self.failed else ''}; "
                f"orders {dict(sorted(self.totals.items()))}; customers erased {self.erased}; "
                f"faults injected {dict(sorted(self.faults.items()))}; "
                f"operator and client paths {dict(sorted(self.paths.items()))}")


def _reporter(args: argparse.Namespace, seeds: int, ledger: ledgers.Ledger | None,
              tally: _Tally) -> Callable[[Report], None]:
    """What is done with each seed's report as it comes: kept, added up, printed where asked (one seed, a trace,
    a violation: with the fewest faults that still fail, for one seed), and progress every 100 seeds."""
    one_seed = args.seed is not None

    def on_report(report: Report) -> None:
        if ledger is not None:
            ledger.record(report)
        tally.add(report)
        if one_seed:
            print(f"seed {report.seed}: fingerprint {report.digest} (a ledger's line for this seed has the same)")
        if report.violations and one_seed and not args.trace:
            needed, report = shrink(report.seed)
            active = {k: v for k, v in vars(needed).items() if v}
            print(f"seed {report.seed}: still fails with only these faults on: {active}")
        if report.violations or args.trace or one_seed:
            print_report(report, trace=args.trace)
        if seeds > 1 and tally.finished % 100 == 0:
            print(f"... seed {report.seed}: {len(tally.failed)} with violations so far, "
                  f"{time.perf_counter() - tally.started:.0f} s", flush=True)

    return on_report


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.summarise is not None:
        return _summarise(args.summarise)
    if args.ledger is not None and args.seed is not None:
        parser.error("--ledger keeps a range of seeds (--first, --seeds); --seed replays one")
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    ledger = None
    if args.ledger is not None:
        try:
            ledger = _open_ledger(args.ledger, args.first, args.seeds)
        except ledgers.LedgerError as error:
            print(f"refused: {error}", file=sys.stderr)
            return 2
        seeds = [s for s in seeds if s not in ledger.done]
        print(f"ledger {args.ledger}: {len(ledger.done)} seeds done before, {len(seeds)} to run", flush=True)
    tally = _Tally()
    # Stopped (the session ends, kill): unwind as on Ctrl-C, so that the pool drops its queue and the ledger closes.
    stopped = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if seeds:
            run_seeds(seeds, 1 if len(seeds) == 1 else args.jobs, _reporter(args, len(seeds), ledger, tally))
    finally:
        signal.signal(signal.SIGTERM, stopped)
        if ledger is not None:
            ledger.close()
    if seeds:
        print(tally.summary(len(seeds), args.jobs))
    if args.ledger is not None:
        return _summarise(args.ledger)
    return 1 if tally.failed else 0


def _open_ledger(path: Path, first: int, count: int) -> ledgers.Ledger:
    code = ledgers.code_version(Path(__file__).resolve().parents[1], leave_out=[path])
    return ledgers.Ledger(path, ledgers.header(code, {"chaos": asdict(Chaos())}, first, count))


def _summarise(path: Path) -> int:
    try:
        summary = ledgers.summarise(path)
    except (OSError, ledgers.LedgerError) as error:
        print(f"cannot summarise {path}: {error}", file=sys.stderr)
        return 2
    for line in ledgers.describe(summary, path):
        print(line)
    return summary.code


if __name__ == "__main__":
    raise SystemExit(main())
