"""Publishing envelopes to Kafka: one idempotent producer per process, flushed before returning.

The outbox relay publishes what handlers write to their outbox. Where direct publish is on, the committers of
the critical path also publish their own events right after the commit (shopstream.direct, ``deliver``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from shopstream.config import Settings, get_settings
from shopstream.wire import OutgoingRecord

# confluent_kafka (~5-7 ms on a function's init) and the MSK IAM signer (boto3 with it: ~150 ms) are imported where
# used: every function that emits loads this module (through the outbox), only the relay and direct publish make a
# producer, and only IAM auth (on MSK) signs a token, when librdkafka asks for one.

DELIVERY_POLL_SECONDS = 0.005


class PublishError(RuntimeError):
    """Some records were not acknowledged by the broker; ``failed`` holds their event ids."""

    def __init__(self, failed: dict[str, str]):
        super().__init__(f"{len(failed)} record(s) not delivered: {sorted(set(failed.values()))}")
        self.failed = failed


class Publisher(Protocol):
    def publish(self, record: OutgoingRecord) -> None: ...

    def flush(self) -> None:
        """Block until every record published so far is acknowledged; raise PublishError otherwise."""

    def deliver(self, records: Sequence[OutgoingRecord], timeout: float) -> None:
        """Publish these records and wait up to ``timeout`` seconds for their acknowledgements; raise
        PublishError naming those not acknowledged. Nothing else in flight is waited for or charged to the call,
        so threads may deliver side by side (key-parallel handlers)."""


class InMemoryPublisher:
    """Keeps records in a list, in publish order; for unit tests and in-process buses."""

    def __init__(self) -> None:
        self.records: list[OutgoingRecord] = []
        self.flushes = 0

    def publish(self, record: OutgoingRecord) -> None:
        self.records.append(record)

    def flush(self) -> None:
        self.flushes += 1

    def deliver(self, records: Sequence[OutgoingRecord], timeout: float) -> None:
        self.records.extend(records)


def producer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings: idempotent, acks=all; IAM (OAUTHBEARER) on MSK, plaintext locally."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": int(settings.producer_flush_timeout_seconds * 1000),
        "client.id": f"shopstream-{settings.service or 'relay'}",
    }
    if settings.kafka_auth == "iam":
        region = settings.aws_region

        def oauth_cb(_config: str) -> tuple[str, float]:
            from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

            token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
            return token, expiry_ms / 1000

        config.update(
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "OAUTHBEARER",
                "oauth_cb": oauth_cb,
            }
        )
    return config


class KafkaPublisher:
    def __init__(self, settings: Settings):
        from confluent_kafka import Producer  # heavy: imported only where something is published

        self._producer = Producer(producer_config(settings))
        self._timeout = settings.producer_flush_timeout_seconds
        self._failed: dict[str, str] = {}
        self._pending = 0

    def _on_delivery(self, event_id: str) -> Callable[[Any, Any], None]:
        def callback(err: Any, _msg: Any) -> None:
            self._pending -= 1
            if err is not None:
                self._failed[event_id] = str(err)

        return callback

    def publish(self, record: OutgoingRecord) -> None:
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    key=record.key.encode("utf-8"),
                    value=record.value,
                    headers=list(record.headers),
                    on_delivery=self._on_delivery(record.event_id),
                )
                self._pending += 1
                break
            except BufferError:
                # Local queue full: serve delivery reports to make room, then retry.
                self._producer.poll(0.1)
        # No poll per record: delivery reports are served by flush(), once per batch.

    def deliver(self, records: Sequence[OutgoingRecord], timeout: float) -> None:
        # Each call counts its own acknowledgements: a record another thread (or an earlier call that gave up)
        # left in flight neither delays nor fails this one. A record given up on here may still reach the broker
        # later; the relay's fallback then publishes it a second time, which consumers drop by eventId.
        answers: dict[str, str | None] = {}

        def answered(event_id: str) -> Callable[[Any, Any], None]:
            def callback(err: Any, _msg: Any) -> None:
                answers[event_id] = None if err is None else str(err)

            return callback

        for record in records:
            while True:
                try:
                    self._producer.produce(record.topic, key=record.key.encode("utf-8"), value=record.value,
                                           headers=list(record.headers), on_delivery=answered(record.event_id))
                    break
                except BufferError:
                    self._producer.poll(0.01)
        deadline = time.monotonic() + timeout
        while len(answers) < len(records) and (left := deadline - time.monotonic()) > 0:
            # Serves delivery reports (of any thread's records) as they arrive; in short steps, since another
            # thread's poll may serve this call's reports and a long poll would then wait for nothing.
            self._producer.poll(min(left, DELIVERY_POLL_SECONDS))
        failed = {r.event_id: answers.get(r.event_id) or f"not acknowledged within {timeout}s" for r in records
                  if answers.get(r.event_id, "") is not None}
        if failed:
            raise PublishError(failed)

    def close(self) -> None:
        """Drop anything unsent and release the client (the process is shutting down)."""
        self._producer.purge()
        self._producer.flush(0)
        del self._producer

    def flush(self) -> None:
        remaining = self._producer.flush(self._timeout)
        failed, self._failed = self._failed, {}
        if remaining:
            failed.setdefault("<undelivered>", f"{remaining} record(s) still queued after {self._timeout}s")
        if failed:
            raise PublishError(failed)


_lock = threading.Lock()
_publisher: Publisher | None = None


def get_publisher() -> Publisher:
    """The process-wide producer (created on first use, reused across invocations)."""
    global _publisher
    with _lock:
        if _publisher is None:
            _publisher = KafkaPublisher(get_settings())
        return _publisher


def installed_publisher() -> Publisher | None:
    """The process-wide producer if there is one yet (nothing is created)."""
    return _publisher


def set_publisher(publisher: Publisher | None) -> None:
    """Install a publisher (tests, local runner) or forget the current one, closing it."""
    global _publisher
    with _lock:
        previous, _publisher = _publisher, publisher
    if previous is not None and previous is not publisher and hasattr(previous, "close"):
        previous.close()
