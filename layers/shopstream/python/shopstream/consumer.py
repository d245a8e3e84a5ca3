"""The consumer runtime behind every MSK event source mapping.

Per record: decode, validate the envelope and the data against the catalog, run the
service's handler function once per eventId (Powertools idempotency on DynamoDB).

- Poison (can never succeed): sent to the handler's DLQ with its raw bytes and the
  reason, and reported as processed so the partition moves on. A record whose data is valid
  but cannot be stored (DynamoDB refuses it: key or item too large, number out of range) is
  poison too: retrying cannot change DynamoDB's answer.
- Transient (anything else): reported in ``batchItemFailures``; the ESM retries from it.
- Per-key order: once a record fails, every later record of the same key in the batch is
  held back (reported failed without being applied), so the redelivery from the failed
  offset applies them in their original order. Records of other keys go on. A handler that
  keeps no order (catalog.HandlerSpec.ordered False) holds nothing back. The batch processor
  keeps this rule (shopstream/batch.py), with the order of each key.

Where the mapping does not take a partial batch response (a Kafka mapping in on-demand mode: settings
``partial_batch_response`` false), Lambda would commit every offset of a batch the function returns from,
failed records included. There, once the batch is processed as above, any failed record fails the whole
invocation (``BatchFailed``): Lambda delivers the whole batch again, and the records already applied are
answered by their idempotency records or state guards, as for any redelivery. Poison records are
dead-lettered only with a batch that succeeds, so a batch retried again and again leaves one letter per
poison record, not one per delivery.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ValidationError

from shopstream import aws, catalog, coldstart, tracing
from shopstream.config import get_settings
from shopstream.dlq import DeadLetterSink, SqsDeadLetterSink, poison_message
from shopstream.envelope import EventEnvelope
from shopstream.events import model_of
from shopstream.inbound import Handled, InboundEvent, PoisonRecord
from shopstream.observability import flush_metrics, logger, metrics, metrics_per_batch, tracer
from shopstream.transaction import Unstorable
from shopstream.wire import HEADER_EVENT_TYPE, IncomingRecord, decode_msk_record

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shopstream.batch import GroupRunner
    from shopstream.spans import Fixed

# Powertools' idempotency utility (~110 ms on a consumer's init, boto3 with it) is imported by the first invocation
# of a consumer that keeps idempotency records (catalog.HandlerSpec.idempotent); the batch machinery by the first
# batch: the consumers modules load Powertools' batch module first, before pydantic, but this module's importers that
# load pydantic before it (local/ops.py, tools, tests) would pay ~100 ms for its models of every AWS event source.

DELIVERIES_REMEMBERED = 10_000  # records whose delivery this environment remembers (a redelivery's span links)


class BatchFailed(Exception):
    """Records of the batch failed and the mapping does not take a partial batch response: the invocation
    fails, so that Lambda delivers the whole batch again instead of committing the failed records' offsets."""


def permanent_failure(error: Exception) -> PoisonRecord | None:
    """The PoisonRecord an exception raised while applying an event amounts to, or None if transient.

    DynamoDB's ValidationException (key over 2,048 bytes, item over 400 KB, a number beyond 38
    digits), an event the handler cannot even build from valid input and a value nested deeper than
    Python recurses are answered the same way on every retry.
    """
    if isinstance(error, PoisonRecord):
        return error
    if isinstance(error, Unstorable):
        return PoisonRecord("unstorable", str(error))
    if isinstance(error, ValidationError):
        return PoisonRecord("unbuildable", _summarise(error))
    if isinstance(error, RecursionError):  # a value nested too deep to copy or hash: so it is every time
        return PoisonRecord("nested_too_deep", str(error)[:300])
    response = getattr(error, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Code") == "ValidationException":
        return PoisonRecord("unstorable", str(response["Error"].get("Message", ""))[:500])
    return None


HandleFn = Callable[[InboundEvent[Any]], Any]
BatchFn = Callable[[list[Handled]], None]


def _summarise(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in error.errors(include_url=False)
    )


def parse_record(record: IncomingRecord, accepts: frozenset[str]) -> tuple[InboundEvent | None, dict[str, Any] | None]:
    """Validate one record. Returns (None, None) for a known type this handler does not take."""
    header_type = record.header(HEADER_EVENT_TYPE)
    if header_type and header_type not in accepts and catalog.known_event_name(header_type):
        return None, None  # filtered on headers, without parsing the value
    if record.value is None:
        raise PoisonRecord("empty_value", "record has no value")
    try:
        body = json.loads(record.value.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        # ValueError: not UTF-8, not JSON, or a number of more digits than Python parses; RecursionError:
        # arrays or objects nested deeper than the parser goes. The same bytes fail the same way every time.
        raise PoisonRecord("not_json", f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    if not isinstance(body, dict):
        raise PoisonRecord("invalid_envelope", f"value is a JSON {type(body).__name__}, not an object")
    try:
        envelope = EventEnvelope.model_validate(body)
    except ValidationError as exc:
        raise PoisonRecord("invalid_envelope", _summarise(exc)) from exc
    spec = catalog.find_event(envelope.event_type, envelope.event_version)
    if spec is None:
        if catalog.known_event_name(envelope.event_type):
            raise PoisonRecord("unsupported_version", f"{envelope.event_type} {envelope.event_version}")
        raise PoisonRecord("unknown_event_type", envelope.event_type)
    if envelope.event_type not in accepts:
        return None, None
    if spec.topic != record.topic:
        raise PoisonRecord("wrong_topic", f"{envelope.event_type} belongs on {spec.topic}, not {record.topic}")
    try:
        data: BaseModel = model_of(spec).model_validate(envelope.data)
    except ValidationError as exc:
        raise PoisonRecord("invalid_data", _summarise(exc)) from exc
    inbound = InboundEvent(envelope, data, record.topic, record.partition, record.offset)
    return inbound, body


@dataclass
class _BatchStats:
    """Counted per record, emitted once per batch (one EMF value per metric, not one per record)."""

    processed: int = 0
    failed: int = 0
    poisoned: int = 0
    skipped: int = 0
    held_back: int = 0
    max_lag_ms: float = 0.0
    done: list[Handled] = field(default_factory=list)  # handled in this batch, with outcomes (for after_batch)
    # Whole-batch mode: poison records wait here until the batch is known to succeed (see the module's docstring).
    defer_letters: bool = False
    letters: list[tuple[IncomingRecord, PoisonRecord]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)  # keys of a batch may run in parallel

    def count(self, name: str, lag_ms: float | None = None) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)
            if lag_ms is not None:
                self.max_lag_ms = max(self.max_lag_ms, lag_ms)

    def emit(self) -> None:
        current = metrics()
        for name, value in (("EventsProcessed", self.processed), ("EventsFailed", self.failed),
                            ("EventsPoisoned", self.poisoned), ("EventsSkipped", self.skipped),
                            ("EventsHeldBack", self.held_back)):
            if value:
                current.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if self.processed:
            current.add_metric(name="ProcessingLag", unit=MetricUnit.Milliseconds, value=self.max_lag_ms)


_stats: ContextVar[_BatchStats] = ContextVar("shopstream_batch_stats")  # set for each batch by EventConsumer


class _Delivery:
    """A record on its way to the handler, for the span that ``_apply`` starts if it applies the event."""

    __slots__ = ("name", "origin", "attributes", "fixed", "started", "applied")

    def __init__(self, name: str, origin: str | None, attributes: dict[str, Any], fixed: Fixed,
                 started: int):
        self.name, self.origin, self.attributes, self.fixed = name, origin, attributes, fixed  # origin: traceparent
        self.started, self.applied = started, False


_delivery: ContextVar[_Delivery | None] = ContextVar("shopstream_delivery", default=None)
_set_aside: ContextVar[list[Any] | None] = ContextVar("shopstream_outcome", default=None)  # EventConsumer._setup


class EventConsumer:
    """Lambda entry point for one handler of one service (``consumer(event, context)``)."""

    def __init__(
        self,
        service: str,
        handler: str,
        handle: HandleFn,
        *,
        dead_letters: DeadLetterSink | None = None,
        persistence_store: Any | None = None,
        idempotent: bool | None = None,
        concurrency: int | None = None,
        after_batch: BatchFn | None = None,
    ):
        """``idempotent``: keep a Powertools idempotency record per eventId; ``concurrency``: keys
        processed at once inside a batch (defaults: the catalog's HandlerSpec for this handler);
        ``after_batch``: called once per invocation with the events handled in it (in offset order), each with
        what ``handle`` returned for it (``Handled.outcome``), for work done per batch rather than per event (the
        audit archive, the analytics' counts). If it raises, the invocation fails and Lambda delivers the whole
        batch again: ``handle`` and ``after_batch`` must both bear that. Under an idempotency record an outcome
        comes only from the delivery that applied the event (a redelivery's is None): work that needs every
        event's outcome in its batch belongs to a state-guarded handler, as the analytics are."""
        self.service_spec = catalog.service(service)
        self.spec = self.service_spec.handler(handler)
        self.idempotent = self.spec.idempotency if idempotent is None else idempotent
        self.concurrency = self.spec.concurrency if concurrency is None else concurrency
        self.run_groups: GroupRunner | None = None  # how a batch's key groups run (None: threads; shopstream.batch)
        self.name = f"{service}.{handler}"
        self.group = catalog.consumer_group_id(service, handler)
        self.service_name = f"{service}-service"  # its spans' service.name
        self._span_attributes = {"messaging.system": "kafka", "messaging.operation.type": "process",
                                 "messaging.consumer.group.name": self.group, "shopstream.handler": self.name}
        self._span_fixed: dict[tuple[str, int, str], tuple[str, Fixed]] = {}
        self.accepts = frozenset(self.spec.event_types)
        self._handle = handle
        self._after_batch = after_batch
        self._dead_letters = dead_letters
        self._persistence_store = persistence_store
        self._setup_lock = threading.Lock()
        self._delivered: OrderedDict[tuple[str, int, int], None] = OrderedDict()  # shopstream.tracing
        self._idempotency_config: Any = None
        self._apply_once: Callable[..., Any] | None = None

    # -- set-up on first invocation (never at import) ----------------------------------
    def _setup(self) -> None:
        settings = get_settings()
        if self._dead_letters is None:
            self._dead_letters = SqsDeadLetterSink(settings.dlq_url)
        if not self.idempotent:  # its own conditional writes keep it to one effect (catalog.HandlerSpec)
            self._apply_once = self._apply
            return
        # Only a function that keeps idempotency records loads the utility (its cold start).
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        # The process's one DynamoDB client (not a second one: each costs cold-start time).
        store = self._persistence_store or DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table_name, boto3_client=aws.client("dynamodb"))
        self._idempotency_config = IdempotencyConfig(
            event_key_jmespath="eventId",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_ttl_seconds,
        )
        recorded = idempotent_function(
            data_keyword_argument="envelope",
            persistence_store=store,
            config=self._idempotency_config,
            key_prefix=self.name,
        )(self._apply_set_aside)

        def apply_once(*, envelope: dict[str, Any], inbound: InboundEvent) -> Any:
            kept: list[Any] = []
            token = _set_aside.set(kept)
            try:
                recorded(envelope=envelope, inbound=inbound)
            finally:
                _set_aside.reset(token)
            return kept[0] if kept else None  # nothing: a duplicate, answered by the record

        self._apply_once = apply_once

    def _apply_set_aside(self, *, envelope: dict[str, Any], inbound: InboundEvent) -> None:
        """``_apply`` under an idempotency record. Powertools would keep what it returns (as JSON) and answer a
        duplicate with it; an outcome is for this invocation's ``after_batch`` only, and a duplicate adds nothing
        to it. So the record keeps nothing and the outcome is set aside for the caller."""
        outcome = self._apply(envelope=envelope, inbound=inbound)
        kept = _set_aside.get()
        if kept is not None:
            kept.append(outcome)

    def _apply(self, *, envelope: dict[str, Any], inbound: InboundEvent) -> Any:
        delivery = _delivery.get()
        if delivery is None:
            return self._handle(inbound)
        # The first delivery that applies the event: its span is a child of the record's context.
        delivery.applied = True
        return self._apply_traced(inbound, delivery.name, delivery.origin, delivery.attributes, delivery.fixed,
                                  delivery.started)

    def _apply_traced(self, inbound: InboundEvent, name: str, origin: str | None, attributes: dict[str, Any],
                      fixed: Fixed, started: int) -> Any:
        span = tracing.start(name, kind="consumer", parent=origin, attributes=attributes, fixed=fixed,
                             start_ns=started, service=self.service_name)
        with tracing.activate(span):
            return self._handle(inbound)

    # -- per invocation -------------------------------------------------------------------
    def __call__(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        try:
            return self._process_batch(event, context)
        finally:
            coldstart.resume()

    def _process_batch(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.batch import process_partial_response

        from shopstream.batch import KeyOrderedBatchProcessor

        with self._setup_lock:
            if self._apply_once is None:
                self._setup()
        if context is not None and self._idempotency_config is not None:
            self._idempotency_config.register_lambda_context(context)
        # A processor per batch: it holds the batch's state (and the local runner is threaded). Keys
        # run concurrently up to the handler's concurrency (catalog), each key's records in order.
        settings = get_settings()
        cap = settings.handler_concurrency_cap
        concurrency = min(self.concurrency, cap) if cap else self.concurrency
        processor = KeyOrderedBatchProcessor(concurrency, ordered=self.spec.ordered, run_groups=self.run_groups)
        whole_batch = not settings.partial_batch_response
        stats = _BatchStats(defer_letters=whole_batch)
        token = _stats.set(stats)
        try:
            with metrics_per_batch():  # what the handler adds from its threads, summed (observability.add_metric)
                response = dict(process_partial_response(
                    event=event, record_handler=self._process_record, processor=processor, context=context
                ))
                failures = len(processor.fail_messages)  # failed or held back (their keys' earlier records failed)
                if whole_batch and not failures:  # the batch is done: its poison records go to the DLQ now
                    for record, poison in sorted(stats.letters, key=lambda letter: letter[0].offset):
                        self._send_letter(record, poison)
                if self._after_batch is not None and stats.done:
                    self._after_batch(sorted(stats.done, key=lambda h: (h.event.topic, h.event.partition,
                                                                        h.event.offset)))
            if whole_batch and failures:
                raise BatchFailed(f"{failures} of {failures + len(processor.success_messages)} records failed or "
                                  "were held back; the mapping delivers the whole batch again")
            return response
        finally:
            _stats.reset(token)
            stats.held_back = processor.held_back
            stats.emit()
            flush_metrics()
            tracing.flush()

    def _process_record(self, record: Any) -> None:
        """Powertools calls this with ``record=`` (a KafkaEventRecord)."""
        self._process(decode_msk_record(record.raw_event))

    def _process(self, record: IncomingRecord) -> None:
        log = logger()
        try:
            inbound, body = parse_record(record, self.accepts)
        except PoisonRecord as poison:
            self._dead_letter(record, poison)
            return
        stats = _stats.get()
        if inbound is None:
            stats.count("skipped")
            return
        log.thread_safe_append_keys(  # records of several keys may run at once (shopstream/batch.py)
            correlation_id=inbound.envelope.correlation_id,
            event_id=inbound.envelope.event_id,
            event_type=inbound.event_type,
        )
        try:
            if tracing.enabled():
                outcome = self._run_traced(record, inbound, body)
            else:
                outcome = self._run(inbound, body)
        except Exception as error:
            rejected = permanent_failure(error)
            if rejected is not None:
                self._dead_letter(record, rejected)
                return
            stats.count("failed")
            log.exception("event failed; will be retried", extra={"offset": record.offset})
            raise
        finally:
            log.thread_safe_remove_keys(["correlation_id", "event_id", "event_type"])
        stats.count("processed", lag_ms=(time.time() - inbound.envelope.timestamp.timestamp()) * 1000)
        if self._after_batch is not None:
            with stats.lock:
                stats.done.append(Handled(inbound, outcome))

    def _run(self, inbound: InboundEvent, body: dict[str, Any] | None) -> Any:
        assert self._apply_once is not None
        active_tracer = tracer()
        if active_tracer is None:
            return self._apply_once(envelope=body, inbound=inbound)
        with active_tracer.provider.in_subsegment(f"## {self.name}") as subsegment:
            subsegment.put_annotation("eventType", inbound.event_type)
            subsegment.put_annotation("correlationId", inbound.envelope.correlation_id)
            return self._apply_once(envelope=body, inbound=inbound)

    def _run_traced(self, record: IncomingRecord, inbound: InboundEvent, body: dict[str, Any] | None) -> Any:
        """The event applied under a CONSUMER span ``process <topic>``: a child of the record's ``traceparent``
        when this delivery is the one that applies it; otherwise (a tool sent it again, or the idempotency
        record answered for an event applied before) the first span of a new trace, linked to that context."""
        assert self._apply_once is not None
        started = time.time_ns()
        origin = record.header(tracing.TRACEPARENT)
        envelope = inbound.envelope
        # OpenTelemetry's messaging conventions (tracing.messaging_attributes; the key, the event's aggregate id,
        # is not repeated): what this consumer's records share is encoded once per topic, partition and type.
        name, fixed = self._span_constants(record.topic, record.partition, inbound.event_type)
        attributes = {"messaging.kafka.offset": record.offset, "messaging.message.id": envelope.event_id,
                      "shopstream.correlation_id": envelope.correlation_id}
        if record.timestamp:  # from the producer's send to this handler: the broker and the mapping
            attributes["shopstream.mapping.wait_ms"] = (started // 1000 - record.timestamp * 1000) / 1000
        again = record.header(tracing.REDELIVERY_HEADER) or ("redelivered" if self._seen_before(record) else None)
        if again:
            attributes["shopstream.redelivery"] = again
            span = tracing.start(name, kind="consumer", parent=None, links=(origin,), attributes=attributes,
                                 fixed=fixed, start_ns=started, service=self.service_name)
            with tracing.activate(span):
                return self._apply_once(envelope=body, inbound=inbound)
        if not self.idempotent:  # no idempotency record: this delivery applies the event
            return self._apply_traced(inbound, name, origin, attributes, fixed, started)
        delivery = _Delivery(name, origin, attributes, fixed, started)
        token = _delivery.set(delivery)
        try:
            outcome = self._apply_once(envelope=body, inbound=inbound)
        finally:
            _delivery.reset(token)
        if not delivery.applied:  # answered by the idempotency record
            attributes["shopstream.redelivery"] = "duplicate"
            tracing.end(tracing.start(name, kind="consumer", parent=None, links=(origin,), start_ns=started,
                                      attributes=attributes, fixed=fixed, service=self.service_name))
        return outcome

    def _span_constants(self, topic: str, partition: int, event_type: str) -> tuple[str, Fixed]:
        """A process span's name and the attributes it shares with the others of its topic, partition and type."""
        key = (topic, partition, event_type)
        found = self._span_fixed.get(key)
        if found is None:
            found = (f"process {topic}", tracing.fixed_attributes({
                **self._span_attributes, "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(partition), "shopstream.event_type": event_type}))
            if len(self._span_fixed) < 10_000:
                self._span_fixed[key] = found
        return found

    def _seen_before(self, record: IncomingRecord) -> bool:
        """Whether this execution environment was given this record before (the mapping delivers a batch again
        after a failure, or a response was lost): remembered for the last DELIVERIES_REMEMBERED records."""
        key = (record.topic, record.partition, record.offset)
        delivered = self._delivered  # each operation atomic: no lock (records of a batch may run in threads)
        if key in delivered:
            return True
        delivered[key] = None
        if len(delivered) > DELIVERIES_REMEMBERED:
            delivered.popitem(last=False)
        return False

    def _dead_letter(self, record: IncomingRecord, poison: PoisonRecord) -> None:
        stats = _stats.get()
        if stats.defer_letters:
            with stats.lock:
                stats.letters.append((record, poison))
            return
        self._send_letter(record, poison)

    def _send_letter(self, record: IncomingRecord, poison: PoisonRecord) -> None:
        assert self._dead_letters is not None
        # If the DLQ itself fails, this raises and the record is retried: nothing is lost.
        self._dead_letters.send(poison_message(record, handler=self.name, reason=poison.reason, detail=poison.detail))
        _stats.get().count("poisoned")
        logger().warning(
            "poison record sent to the dead-letter queue",
            extra={"reason": poison.reason, "detail": poison.detail[:500], "topic": record.topic,
                   "partition": record.partition, "offset": record.offset},
        )
