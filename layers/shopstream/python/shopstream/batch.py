"""Key-ordered parallelism inside a batch, on top of Powertools' BatchProcessor.

Records of different keys are processed concurrently (at most ``concurrency`` at a time); the
records of one key run in their order, one after another, on one thread. Each record still goes
through Powertools' own ``_process_record`` (success and failure handlers, the partial batch
response), and the consumer runtime's rule holds per key: once a record fails, the later records
of its key are held back. This is what the Confluent Parallel Consumer does for slow consumers:
a partition no longer moves at the pace of one record at a time.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType


def ordering_key(record: dict[str, Any]) -> tuple[str, int, str | None]:
    """What must stay in order: one key of one partition (``None``: a record without a key)."""
    return str(record.get("topic")), int(record.get("partition", 0)), record.get("key")


class KeyOrderedBatchProcessor(BatchProcessor):
    def __init__(self, concurrency: int = 1):
        super().__init__(event_type=EventType.Kafka)
        self.concurrency = max(1, concurrency)

    def process(self) -> list[tuple[Any, ...]]:
        groups: dict[tuple[str, int, str | None], list[dict[str, Any]]] = {}
        for record in self.records:
            groups.setdefault(ordering_key(record), []).append(record)
        if self.concurrency == 1 or len(groups) == 1:
            return super().process()
        outcomes: dict[int, tuple[Any, ...]] = {}

        def run_in_order(group: list[dict[str, Any]]) -> None:
            for record in group:
                outcomes[id(record)] = self._process_record(record)

        # Each key's records run in a copy of this context (batch statistics, settings overrides).
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(groups))) as pool:
            futures = [pool.submit(contextvars.copy_context().run, run_in_order, group) for group in groups.values()]
            for future in futures:
                future.result()
        return [outcomes[id(record)] for record in self.records]
