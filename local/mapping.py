"""A local event source mapping: what Lambda's MSK ESM does, against any Kafka broker.

- one consumer group per mapping (the id CDK gives it), offsets committed only after success
- batches of up to batch_size within max_batching_window, as the ``aws:kafka`` event
- the mapping's filters (none: every record reaches the function, shopstream/filters.py)
- the partial batch response: a partition resumes at its first failed offset; a function
  error retries the whole batch; once retry_attempts are spent, the invocation record (metadata and
  records) goes to the on-failure destination (the service's failed-batch bucket, which announces it to
  the handler's DLQ) and the partition moves past the batch
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from local.context import LocalLambdaContext
from local.destinations import GiveUp
from shopstream import catalog
from shopstream.config import Settings, override_settings
from shopstream.failed_batches import invocation_record
from shopstream.filters import esm_filter_patterns, passes
from shopstream.wire import msk_event, msk_record_of

SESSION_TIMEOUT_MS = 6000  # short: a group's first fetch waits about half of it on Tansu
# Locally a mapping waits at most this long to fill a batch (on AWS: the catalog's batching window,
# up to a second). The saga's own mappings have window 0 (10 ms locally, the consume timeout of an
# idle poll); the others (audit, analytics, notifications, replicas) batch for a quarter of a
# second, which halves their invocations under load and keeps a developer's wait short.
LOCAL_BATCHING_WINDOW_SECONDS = 0.25
# Functions run one at a time in this process (API requests excepted: they go first, see
# local/moto_server.py). On AWS every invocation has an execution environment of its own; here all
# of them share one interpreter, and threads running Python at once only take turns at the GIL:
# each turn costs a context switch, and a thread can be switched out while it holds moto's lock.
# Measured with bench/local_runtime (1,000 orders offered at 5/s, 2 cores): one at a time settles
# with p95 3.7 s, two at a time 6.0 s, unbounded 35 s. Any serial order of invocations is one a
# deployment can produce; the seeded simulation explores the others (local/simulation.py).
FUNCTION_SLOT = threading.BoundedSemaphore(1)


def local_batching_window(handler: catalog.HandlerSpec) -> float:
    """The catalog's window, capped locally; never zero (a zero timeout would spin on an idle topic)."""
    return max(0.01, min(handler.max_batching_window_seconds, LOCAL_BATCHING_WINDOW_SECONDS))


# Tansu answers a fetch when its wait is over, not when a record arrives (fetch.min.bytes 1 notwithstanding): a record
# waits half of it on average for its consumer, and each idle consumer asks 1,000 / wait times a second. Measured on the
# local broker: produce -> consume p50 51 ms at 100 ms, 14 ms at 25, 7 ms at 10; 35 idle consumers cost Tansu 19% of
# a core at 100 ms, 43% at 25, 83% at 10. The critical path's handlers (window 0: as soon as a record arrives) ask
# often; the others, whose batches wait up to LOCAL_BATCHING_WINDOW_SECONDS anyway, seldom.
CRITICAL_FETCH_WAIT_MS = 25
FETCH_WAIT_MS = 250


def consumer_config(bootstrap: str, group: str, *, critical_path: bool = False) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": 1000, "client.id": group,
            "fetch.wait.max.ms": CRITICAL_FETCH_WAIT_MS if critical_path else FETCH_WAIT_MS}


def on_failure_record(*, function: str, records: list[dict[str, Any]], condition: str, error: str,
                      attempts: int, bootstrap: str = "") -> dict[str, Any]:
    """What Lambda writes to an MSK mapping's S3 on-failure destination for one partition's given-up records:
    the metadata (``KafkaBatchInfo``) and the invocation event itself (shopstream.failed_batches)."""
    first = records[0]
    info = {"batchSize": len(records), "topic": first["topic"], "partition": first["partition"],
            "firstOffset": first["offset"], "lastOffset": records[-1]["offset"], "eventSourceArn": "local"}
    return invocation_record(function=function, condition=condition, error=error, attempts=attempts,
                             batch_info=info, event=msk_event(records, bootstrap_servers=bootstrap))


class KafkaMapping:
    def __init__(self, service: str, handler: catalog.HandlerSpec, function: Callable[[dict, Any], dict],
                 settings: Settings, bootstrap: str, send_on_failure: GiveUp,
                 group_id: str | None = None, start_offsets: dict[int, int] | None = None):
        self.service, self.handler, self.function, self.settings = service, handler, function, settings
        self.bootstrap = bootstrap
        self.group = group_id or catalog.consumer_group_id(service, handler.name)
        self.patterns = esm_filter_patterns(handler)
        self.send_on_failure = send_on_failure
        self.start_offsets = start_offsets
        self.attempts: dict[tuple[int, int], int] = defaultdict(int)
        self.assigned = threading.Event()
        self.stopping = threading.Event()
        self.processed = 0
        self.busy_seconds = 0.0  # time inside the function (benchmarks: which handler bounds throughput)
        self.invocations = 0
        self.thread = threading.Thread(target=self._run, name=f"esm-{self.group}", daemon=True)

    def start(self) -> KafkaMapping:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=15)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        if self.start_offsets is not None:
            for tp in partitions:
                tp.offset = self.start_offsets.get(tp.partition, tp.offset)
            consumer.assign(partitions)
        self.assigned.set()

    def _run(self) -> None:
        consumer = Consumer(consumer_config(self.bootstrap, self.group, critical_path=self.handler.critical_path))
        consumer.subscribe([self.handler.topic], on_assign=self._on_assign)
        try:
            while not self.stopping.is_set():
                messages = consumer.consume(self.handler.batch_size, timeout=local_batching_window(self.handler))
                messages = [m for m in messages if m.error() is None]
                if messages:
                    self._process(consumer, messages)
        finally:
            consumer.close()

    def _wanted(self, message: Any) -> bool:
        return passes(self.patterns, message.value())

    def invoke(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The function on one batch, as the ``aws:kafka`` event, in this process's function slot."""
        context = LocalLambdaContext(function_name=f"{self.service}-{self.handler.name}",
                                     timeout_seconds=self.handler.timeout_seconds)
        with FUNCTION_SLOT, override_settings(self.settings):
            started = time.monotonic()
            try:
                return self.function(msk_event(records, bootstrap_servers=self.bootstrap), context)
            finally:
                # Nothing stops a local invocation at its timeout, as Lambda would; what relies on that bound (an
                # analytics window is final once its batches' timeout has passed) could be wrong here: say so.
                took = time.monotonic() - started
                if took > self.handler.timeout_seconds:
                    logging.getLogger(__name__).warning(
                        "%s.%s ran %.0f s, past its %d s timeout (Lambda would have stopped it)", self.service,
                        self.handler.name, took, self.handler.timeout_seconds)

    def _process(self, consumer: Any, messages: list[Any]) -> None:
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for m in messages:
            by_partition[m.partition()].append(m)
        wanted = [m for m in messages if self._wanted(m)]
        failed_at: dict[int, int] = {}
        error = ""
        if wanted:
            started = time.perf_counter()
            try:
                response = self.invoke([msk_record_of(m) for m in wanted])
                for failure in response.get("batchItemFailures", []):
                    item = failure["itemIdentifier"]
                    partition = int(str(item["partition"]).rsplit("-", 1)[-1])
                    failed_at[partition] = min(failed_at.get(partition, item["offset"]), item["offset"])
            except Exception as exc:  # a function error: the whole batch is retried
                error = f"{type(exc).__name__}: {exc}"
                for partition, group in by_partition.items():
                    failed_at[partition] = group[0].offset()
            finally:
                self.busy_seconds += time.perf_counter() - started
                self.invocations += 1
        commits = []
        for partition, group in by_partition.items():
            last = group[-1].offset()
            if partition not in failed_at:
                commits.append(TopicPartition(self.handler.topic, partition, last + 1))
                self.processed += len(group)
                continue
            offset = failed_at[partition]
            self.attempts[(partition, offset)] += 1
            if self.attempts[(partition, offset)] > self.handler.retry_attempts:
                # Given up: the records themselves go to the on-failure destination, then the partition moves on.
                given_up = [msk_record_of(m) for m in group if m.offset() >= offset and self._wanted(m)]
                if given_up:
                    self.send_on_failure(on_failure_record(
                        function=f"{self.service}-{self.handler.name}", records=given_up,
                        condition="RetryAttemptsExhausted", error=error or "Unhandled",
                        attempts=self.attempts[(partition, offset)], bootstrap=self.bootstrap),
                        f"{self.handler.topic}-{partition}")
                commits.append(TopicPartition(self.handler.topic, partition, last + 1))
                continue
            consumer.seek(TopicPartition(self.handler.topic, partition, offset))
            if offset > group[0].offset():
                commits.append(TopicPartition(self.handler.topic, partition, offset))
            time.sleep(min(0.2 * self.attempts[(partition, offset)], 2.0))  # back off before the retry
        if commits:
            consumer.commit(offsets=commits, asynchronous=False)
