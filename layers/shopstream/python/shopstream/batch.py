"""Key-ordered processing of a batch, on top of Powertools' BatchProcessor: the one place that keeps each key's order.

Records of different keys are processed concurrently (at most ``concurrency`` at a time); the
records of one key run in their order, one after another, on one thread. Each record still goes
through Powertools' own ``_process_record`` (success and failure handlers, the partial batch
response). Once a record fails, the later records of its key in the batch are held back: reported
failed (``HeldBack``) without being handed to the handler, so the redelivery from the failed offset
applies them in their order (Powertools' SqsFifoPartialProcessor does the same for a FIFO message
group, ``skip_group_on_error``). This is what the Confluent Parallel Consumer does for slow consumers:
a partition no longer moves at the pace of one record at a time.

A handler that keeps no order (catalog.HandlerSpec.ordered False: the audit trail, written once per
event whatever the order) has every record in a group of its own, so one busy key (one admin's
actions) does not run one record at a time.

How the groups run is a strategy (``run_groups``): threads here, a seeded interleaving in the simulation
(``SeededInterleaving``), which replays exactly what a seed chose among the orders threads allow.
"""

from __future__ import annotations

import contextvars
import random
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

Record = dict[str, Any]
Item = TypeVar("Item")  # what SeededInterleaving orders: records here, anything in its tests


class HeldBack(Exception):
    """Not attempted: an earlier record of the same key failed in this batch (redelivered after it)."""


# (the batch's groups in order of their first record, run one record, at most this many groups at once)
GroupRunner = Callable[[list[list[Record]], Callable[[Record], None], int], None]


def ordering_key(record: Record, *, ordered: bool = True) -> tuple[str, int, str | int | None]:
    """What must stay in order: one key of one partition (``None``: a record without a key); for a handler
    that keeps no order, the record alone (its offset)."""
    topic, partition = str(record.get("topic")), int(record.get("partition", 0))
    if not ordered:
        return topic, partition, int(record.get("offset", 0))
    return topic, partition, record.get("key")


def in_threads(groups: list[list[Record]], run: Callable[[Record], None], concurrency: int) -> None:
    """Each group on a worker thread, in a copy of the caller's context (batch statistics, settings overrides)."""
    def run_in_order(group: list[Record]) -> None:
        for record in group:
            run(record)

    with ThreadPoolExecutor(max_workers=min(concurrency, len(groups))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, run_in_order, group) for group in groups]
        for future in futures:
            future.result()


class SeededInterleaving:
    """Runs the groups on the caller's thread, record by record, in an order drawn from ``rng``: any order
    ``in_threads`` can produce at record granularity. At most ``concurrency`` groups are under way, taken in
    the order the pool takes them; each group's records stay in their order."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def __call__(self, groups: list[list[Item]], run: Callable[[Item], None], concurrency: int) -> None:
        waiting = [list(group) for group in groups]
        waiting.reverse()  # popped from the end: the first group first
        running: list[list[Item]] = []
        while waiting or running:
            while waiting and len(running) < concurrency:
                running.append(waiting.pop())
            index = self.rng.randrange(len(running))
            run(running[index].pop(0))
            if not running[index]:
                del running[index]


class KeyOrderedBatchProcessor(BatchProcessor):
    def __init__(self, concurrency: int = 1, *, ordered: bool = True, run_groups: GroupRunner | None = None):
        super().__init__(event_type=EventType.Kafka)
        self.concurrency = max(1, concurrency)
        self.ordered = ordered
        self.run_groups = run_groups or in_threads
        self.held_back = 0  # records of this batch held back behind an earlier failure of their key
        self._failed_keys: set[tuple[str, int, str | int | None]] = set()
        self._lock = threading.Lock()  # keys run on several threads

    def _process_record(self, record: Record) -> Any:
        """Powertools' step for one record, unless an earlier record of its key failed in this batch (a handler
        that keeps no order holds nothing back: each record is a key of its own)."""
        key = ordering_key(record, ordered=self.ordered)
        with self._lock:
            held = key in self._failed_keys
            self.held_back += held
        if held:
            return self._hold_back(record)
        outcome = super()._process_record(record)
        if outcome[0] == "fail":
            with self._lock:
                self._failed_keys.add(key)
        return outcome

    def _hold_back(self, record: Record) -> Any:
        data = self._to_batch_type(record=record, event_type=self.event_type, model=self.model)
        try:
            raise HeldBack(f"offset {record.get('offset')} waits for an earlier failed record of its key")
        except HeldBack:
            return self.failure_handler(record=data, exception=sys.exc_info())

    def process(self) -> list[tuple[Any, ...]]:
        groups: dict[tuple[str, int, str | int | None], list[Record]] = {}
        for record in self.records:
            groups.setdefault(ordering_key(record, ordered=self.ordered), []).append(record)
        if self.concurrency == 1 or len(groups) == 1:
            return super().process()
        outcomes: dict[int, tuple[Any, ...]] = {}

        def run(record: Record) -> None:
            outcomes[id(record)] = self._process_record(record)

        self.run_groups(list(groups.values()), run, self.concurrency)
        return [outcomes[id(record)] for record in self.records]
