"""Per-record CPU of the consumer runtime (decode + validate + dispatch), store and publisher faked,
next to plain json.loads of the same payloads in the same run."""

from __future__ import annotations

import json
import os
import time
from typing import Any

RECORDS = int(os.environ.get("BENCH_RECORDS", 10_000))


class InMemoryIdempotency:
    """Powertools persistence kept in a dict (benchmark only: isolates the runtime's own CPU)."""

    def __new__(cls):
        from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

        class _Layer(BasePersistenceLayer):
            def __init__(self):
                super().__init__()
                self.items: dict[str, Any] = {}

            def _get_record(self, idempotency_key):
                from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

                if idempotency_key not in self.items:
                    raise IdempotencyItemNotFoundError
                return self.items[idempotency_key]

            def _put_record(self, data_record):
                self.items[data_record.idempotency_key] = data_record

            def _update_record(self, data_record):
                self.items[data_record.idempotency_key] = data_record

            def _delete_record(self, data_record):
                self.items.pop(data_record.idempotency_key, None)

        return _Layer()


class NoDeadLetters:
    def send(self, message: dict) -> None:
        raise AssertionError("no poison in this benchmark")


def measure() -> dict[str, float]:
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from local.context import LocalLambdaContext
    from shopstream.consumer import EventConsumer
    from shopstream.wire import msk_event, msk_record, to_record
    from tests.support import sample_event

    handled = []
    consumer = EventConsumer("order", "product-replica", handled.append, dead_letters=NoDeadLetters(),
                             persistence_store=InMemoryIdempotency())
    outgoing = [to_record(sample_event("ProductCreated")) for _ in range(RECORDS)]
    records = [msk_record(topic=r.topic, partition=i % 8, offset=i, key=r.key.encode(), value=r.value,
                          headers=list(r.headers)) for i, r in enumerate(outgoing)]
    batches = [msk_event(records[i:i + 100]) for i in range(0, RECORDS, 100)]
    context = LocalLambdaContext()
    consumer(msk_event(records[:1]), context)  # set-up outside the measurement
    handled.clear()
    started = time.process_time()
    for batch in batches:
        consumer(batch, context)
    runtime_cpu = time.process_time() - started
    assert len(handled) == RECORDS - 1 or len(handled) == RECORDS
    started = time.process_time()
    for r in outgoing:
        json.loads(r.value)
    json_cpu = time.process_time() - started
    return {"records": RECORDS, "runtime_us_per_record": runtime_cpu / RECORDS * 1e6,
            "json_loads_us_per_record": json_cpu / RECORDS * 1e6, "ratio": runtime_cpu / json_cpu}


def report(r: dict[str, float]) -> str:
    return ("| records | runtime µs/record | json.loads µs/record | ratio |\n|---|---|---|---|\n"
            f"| {r['records']} | {r['runtime_us_per_record']:.1f} | {r['json_loads_us_per_record']:.2f} | "
            f"{r['ratio']:.0f}x |")


if __name__ == "__main__":
    print(report(measure()))
