"""One OpenTelemetry trace per order, across Kafka (docs/decisions.md, 2026-12-04).

W3C trace context travels with every event: the API request's SERVER span (or a handler's CONSUMER
span) is current when an event is added to the outbox, and the outbox item keeps its ``traceparent``;
the relay publishes the event under a PRODUCER span ``publish <topic>``, child of that context, and puts
its own context in the record's ``traceparent`` Kafka header; the consumer runtime processes the record
under a CONSUMER span ``process <topic>``, child of the header's context, in which the handler's commits
(``commit``) and provider calls (CLIENT spans) nest and its own events are added to the outbox.

A record that is not the first delivery to apply it gets a new trace, with a *link* to the context it
carries, not another child in the old trace: a delivery the idempotency record answers (a duplicate),
and a record a tool sends again (``shopstream-redelivery`` header: ``replay``, ``redrive``).

Configuration (process-wide, from the environment; the stacks set it from cdk.json):
- ``SHOPSTREAM_TRACE_EXPORT``: unset or ``off``: no tracing (shopstream.spans is not imported, each call is a check);
  ``xray``: OTLP to X-Ray's endpoint, SigV4-signed; an ``http(s)://`` URL: OTLP/HTTP JSON to it
  (``SHOPSTREAM_TRACE_HEADERS``: ``name=value,...`` sent with it). The local runtime installs its
  collector with ``configure``.
- ``SHOPSTREAM_TRACE_SAMPLE_RATE``: the share of new traces recorded (ParentBased(TraceIdRatioBased)).

Spans are exported by ``flush``, which every entry point calls before it returns (a Lambda environment
is frozen between invocations: nothing may wait for a background thread). The recording is shopstream.spans:
the standard library only, no OpenTelemetry package (what that saves: docs/decisions.md, 2026-12-04).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from shopstream.config import get_settings

if TYPE_CHECKING:
    from shopstream.spans import Exporter, Fixed, Recorder, Span, SpanContext

# shopstream.spans (0.5 ms on an API's init from byte code, 7 ms compiled from source as on Lambda) and, for X-Ray's
# credentials, shopstream.aws (which the relay does not load otherwise: 0.4 ms, 1 ms compiled) are imported with the
# first recorder: with tracing off (SHOPSTREAM_TRACE_EXPORT unset or off) neither is.

TRACEPARENT = "traceparent"  # the W3C header, in Kafka record headers and as the outbox item's attribute
TRACE_RESPONSE_HEADER = "traceresponse"  # W3C Trace Context level 2: the context that served a request
TRACE_ID_HEADER = "X-Trace-Id"  # GET /orders/{orderId}: the order's trace (the request that placed it)
REDELIVERY_HEADER = "shopstream-redelivery"  # set by tools that send records again (wire.redelivered)
EXPORT_ENV = "SHOPSTREAM_TRACE_EXPORT"
SAMPLE_RATE_ENV = "SHOPSTREAM_TRACE_SAMPLE_RATE"
HEADERS_ENV = "SHOPSTREAM_TRACE_HEADERS"

_UNSET: Any = object()
_recorder: Recorder | None = _UNSET
spans: Any = None  # shopstream.spans, imported with the first recorder: nothing of it with tracing off


def _load() -> Any:
    global spans
    if spans is None:
        from shopstream import spans  # the global (also what tests/infra/code_calls.py follows to the exporter)
    return spans


def _service() -> str:
    service = get_settings().service
    return f"{service}-service" if service else "shopstream"


def _from_environment() -> Recorder | None:
    export = os.environ.get(EXPORT_ENV, "").strip()
    if not export or export == "off":
        return None
    _load()
    rate = float(os.environ.get(SAMPLE_RATE_ENV, "1") or 1)
    exporter: Exporter
    if export == "xray":
        from shopstream import aws

        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
        exporter = spans.xray_exporter(region, aws.credentials)
    elif export.startswith(("http://", "https://")):
        headers = dict(pair.split("=", 1) for pair in os.environ.get(HEADERS_ENV, "").split(",") if "=" in pair)
        exporter = spans.http_exporter(export, headers)
    else:
        raise ValueError(f"{EXPORT_ENV} must be off, xray or an http(s) URL, not {export!r}")
    made: Recorder = spans.Recorder(sample_rate=rate, exporter=exporter, service=_service)
    return made


def recorder() -> Recorder | None:
    global _recorder
    if _recorder is _UNSET:
        _recorder = _from_environment()
    return _recorder


def enabled() -> bool:
    return (_recorder if _recorder is not _UNSET else recorder()) is not None


def configure(exporter: Exporter | None, *, sample_rate: float = 1.0) -> Recorder:
    """Trace in this process, whatever the environment says (the local runtime, tests)."""
    global _recorder
    _load()
    _recorder = spans.Recorder(sample_rate=sample_rate, exporter=exporter, service=_service)
    return _recorder


def reset() -> None:
    """Forget the configuration: the next use reads the environment again."""
    global _recorder
    _recorder = _UNSET


def flush() -> None:
    active = _recorder if _recorder is not _UNSET else None
    if active is not None:
        active.flush()


# --- spans -------------------------------------------------------------------------------------
CURRENT: Any = object()  # ``parent``: the span current in this context


def start(name: str, *, kind: str = "internal", parent: Any = CURRENT, links: tuple[str | None, ...] = (),
          attributes: dict[str, Any] | None = None, fixed: Fixed | None = None, start_ns: int | None = None,
          service: str | None = None) -> Span | None:
    """A span, not yet current (None with tracing off). ``parent``: CURRENT, a ``traceparent`` or None (a
    new trace); ``links``: ``traceparent`` values to link to; ``attributes``: the span's from then on (not
    copied); ``fixed``: attributes many spans share, encoded once (``fixed_attributes``); ``service``: its
    ``service.name`` (by default the service whose settings are current)."""
    active = _recorder if _recorder is not _UNSET else recorder()
    if active is None:
        return None
    context: SpanContext | None = spans.current_context() if parent is CURRENT else spans.context_of(parent)
    linked = [found for found in (spans.context_of(link) for link in links) if found is not None] if links else ()
    return active.start(name, kind=kind, parent=context, links=linked, attributes=attributes, fixed=fixed,
                        start_ns=start_ns, service=service)


def fixed_attributes(attributes: Mapping[str, Any]) -> Fixed:
    """Attributes that many spans share, encoded once (give them as ``start(..., fixed=...)``)."""
    fixed: Fixed = _load().Fixed(attributes)
    return fixed


def activate(span: Span | None) -> AbstractContextManager[Span | None]:
    """``span`` current while the block runs, ended after it (failed if an exception escapes)."""
    if span is None:
        return nullcontext(None)
    active: AbstractContextManager[Span] = spans.activate(span)
    return active


def span(name: str, *, kind: str = "internal",
         attributes: dict[str, Any] | None = None) -> AbstractContextManager[Span | None]:
    """A child of the current span around the block (a commit, a provider call); nothing with tracing off."""
    return activate(start(name, kind=kind, attributes=attributes))


def traceparent(span: Span | None) -> str | None:
    if span is None:
        return None
    value: str = spans.traceparent_of(span.context)
    return value


def current_traceparent() -> str | None:
    """The current span's ``traceparent`` (what an outbox item keeps), None without one."""
    if not enabled():
        return None
    found = spans.current_context()
    return spans.traceparent_of(found) if found is not None else None


def trace_id_of(traceparent_value: str | None) -> str | None:
    parts = (traceparent_value or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def current_trace_id() -> str | None:
    return trace_id_of(current_traceparent())


def fail(span: Span | None, error: str) -> None:
    """Mark ``span`` failed (ERROR status with ``error`` as its description)."""
    if span is not None:
        span.fail(error)


def end(span: Span | None, *, error: str | None = None, end_ns: int | None = None) -> None:
    if span is None:
        return
    if error is not None:
        fail(span, error)
    span.end(end_ns)


def messaging_attributes(*, topic: str, operation: str, key: str | None = None, event_id: str | None = None,
                         partition: int | None = None, offset: int | None = None,
                         group: str | None = None) -> dict[str, Any]:
    """OpenTelemetry's messaging semantic conventions for one Kafka record."""
    attributes: dict[str, Any] = {
        "messaging.system": "kafka", "messaging.destination.name": topic,
        "messaging.operation.type": "send" if operation == "publish" else operation}
    if key is not None:
        attributes["messaging.kafka.message.key"] = key
    if event_id is not None:
        attributes["messaging.message.id"] = event_id
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    if group is not None:
        attributes["messaging.consumer.group.name"] = group
    return attributes


def now_ns() -> int:
    return time.time_ns()


def headers_with(headers: Mapping[str, bytes] | tuple[tuple[str, bytes], ...], **values: str) -> tuple[
        tuple[str, bytes], ...]:
    """Record headers with ``values`` set (``traceparent=...``), each replacing any header of its name."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    names = {name.replace("_", "-") for name in values}
    kept = [(name, value) for name, value in pairs if name not in names]
    return (*kept, *((name.replace("_", "-"), value.encode()) for name, value in values.items()))
