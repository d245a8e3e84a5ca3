"""The span recorder behind shopstream.tracing: OpenTelemetry's data model, W3C Trace Context, OTLP/HTTP JSON.

Spans are OpenTelemetry spans as the protocol knows them (ids, kinds, attributes by the semantic conventions,
links, events, status) and travel as W3C ``traceparent`` values and OTLP ``ExportTraceServiceRequest``s in
their JSON encoding (X-Ray's OTLP endpoint takes JSON as well as protobuf: no protobuf runtime in the layer).
What is not OpenTelemetry's is the Python code: neither the SDK (12 ms of import) nor, since the overheads
were measured (docs/decisions.md, 2026-12-04), the API package, whose import (``opentelemetry.trace``, its
context and its propagator: 4–8 ms) took most of the 10 ms tracing may add to a cold start, and whose context
and span objects took a fifth of the 50 µs it may add to a record. Here a span is a slotted object, a context
a tuple of hex strings, the current span a ContextVar; sampling is the SDK's
``ParentBased(TraceIdRatioBased(rate))``; finished sampled spans are kept until ``flush`` and encoded then.

Only the standard library, all of it loaded already in every function: importing this costs well under 1 ms.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from operator import itemgetter
from typing import Any

# The exporters' HTTP stack (urllib3, ssl, botocore's CA bundle path and, for X-Ray, its SigV4 signer: ~35 ms on an
# API's init, ~54 ms on the relay's) is imported by the first export, not with this module (loaded by the first
# span): only a flush with sampled spans to send exports anything.

SCOPE = "shopstream"
KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}  # OTLP's SpanKind values
STATUS_UNSET, STATUS_ERROR = 0, 2  # OTLP's StatusCode values (OK is never set: UNSET is success)
SAMPLED = 0x01  # W3C trace-flags
_LOW_64 = 2**64 - 1
_ZERO_SPAN = "0" * 16

log = logging.getLogger("shopstream.tracing")

# Takes one ExportTraceServiceRequest, OTLP/JSON encoded; what it returns is not used (a collector's count, say).
Exporter = Callable[[bytes], object]


class SpanContext(tuple[str, str, int, bool]):
    """What a ``traceparent`` carries: ids as lowercase hex (as they travel and are exported), the W3C
    trace-flags (SAMPLED), and whether it was read from a traceparent (another process made it). A plain
    tuple: made by ``tuple.__new__`` (one per record; a NamedTuple's class alone costs 0.3 ms of import)."""

    __slots__ = ()
    trace_id: str = property(itemgetter(0))  # type: ignore[assignment]  # 32 hex digits
    span_id: str = property(itemgetter(1))  # type: ignore[assignment]  # 16 hex digits
    flags: int = property(itemgetter(2))  # type: ignore[assignment]
    remote: bool = property(itemgetter(3))  # type: ignore[assignment]

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)


_new_tuple = tuple.__new__


def span_context(trace_id: str, span_id: str, flags: int, remote: bool = False) -> SpanContext:
    return _new_tuple(SpanContext, (trace_id, span_id, flags, remote))


_VERSION_00 = r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})"  # what this system writes
# A later version may append fields (W3C: read the first four, ignore the rest).
_ANY_VERSION = r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^ ]*)?"
_patterns: list[re.Pattern[str]] = []  # compiled at the first traceparent read, not at import (an API may read none)
_ZERO_TRACE = "0" * 32


def context_of(traceparent: str | None) -> SpanContext | None:
    """The remote span context a W3C ``traceparent`` names (None when absent, malformed or invalid)."""
    if not traceparent:
        return None
    if not _patterns:
        _patterns[:] = [re.compile(_VERSION_00), re.compile(_ANY_VERSION)]
    parsed = _patterns[0].fullmatch(traceparent)
    if parsed is not None:
        trace_id, span_id, flags = parsed.groups()
    else:
        parsed = _patterns[1].fullmatch(traceparent.strip())
        if parsed is None or parsed[1] in ("00", "ff"):  # 00 has no more fields; ff is invalid
            return None
        trace_id, span_id, flags = parsed[2], parsed[3], parsed[4]
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return _new_tuple(SpanContext, (trace_id, span_id, int(flags, 16), True))


def traceparent_of(context: SpanContext) -> str:
    return f"00-{context.trace_id}-{context.span_id}-{context.flags & 0xFF:02x}"


class Fixed:
    """Attributes that many spans share (a consumer's group, handler, topic, partition, event type), encoded
    once: give them as ``fixed`` when starting a span, and set none of their keys on it again."""

    __slots__ = ("attributes", "encoded")

    def __init__(self, attributes: Mapping[str, Any]):
        self.attributes = dict(attributes)
        self.encoded = _attributes(self.attributes)[1:-1]  # the pairs, without the array's brackets


class Span:
    """A span that is not recorded (its trace is not sampled): it has a context, for its children and for the
    ``traceparent`` it passes on, and ignores everything else."""

    __slots__ = ("context",)

    def __init__(self, context: SpanContext):
        self.context = context

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        return None

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None,
                  timestamp: int | None = None) -> None:
        return None

    def record_exception(self, exception: BaseException) -> None:
        return None

    def fail(self, description: str) -> None:
        """ERROR status, with ``description``."""
        return None

    def end(self, end_ns: int | None = None) -> None:
        return None


class RecordedSpan(Span):
    """A sampled span: kept by its recorder from ``end`` until the next flush."""

    __slots__ = ("_recorder", "name", "parent", "kind", "start_ns", "end_ns", "attributes", "fixed", "links",
                 "events", "status", "status_message", "service")

    def __init__(self, recorder: Recorder, name: str, context: SpanContext, parent: SpanContext | None, kind: int,
                 start_ns: int, attributes: dict[str, Any], fixed: Fixed | None,
                 links: tuple[tuple[SpanContext, Mapping[str, Any]], ...], service: str):
        self.context, self._recorder, self.name, self.parent, self.kind = context, recorder, name, parent, kind
        self.start_ns, self.end_ns, self.attributes, self.fixed = start_ns, 0, attributes, fixed
        self.links, self.service = links, service
        self.events: list[tuple[str, int, dict[str, Any]]] | None = None  # made by the first add_event
        self.status, self.status_message = STATUS_UNSET, ""

    def is_recording(self) -> bool:
        return not self.end_ns

    def set_attribute(self, key: str, value: Any) -> None:
        if not self.end_ns:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if not self.end_ns:
            self.attributes.update(attributes)

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None,
                  timestamp: int | None = None) -> None:
        if not self.end_ns:
            if self.events is None:
                self.events = []
            self.events.append((name, timestamp or time.time_ns(), dict(attributes or {})))

    def record_exception(self, exception: BaseException) -> None:
        self.add_event("exception", {"exception.type": type(exception).__name__,
                                     "exception.message": str(exception)[:500]})

    def fail(self, description: str) -> None:
        if not self.end_ns:
            self.status, self.status_message = STATUS_ERROR, description[:300]

    def end(self, end_ns: int | None = None) -> None:
        if self.end_ns:
            return
        self.end_ns = end_ns or time.time_ns()
        self._recorder.finished(self)


class Recorder:
    """Starts spans (sampling them), keeps the finished ones, and exports them on ``flush``."""

    def __init__(self, *, sample_rate: float, exporter: Exporter | None, service: Callable[[], str]):
        self.sample_rate = sample_rate
        rate = max(0.0, min(1.0, sample_rate))
        self._always = rate >= 1.0
        self._bound = round(rate * _LOW_64)
        self.exporter = exporter
        self._service = service
        self._finished: deque[RecordedSpan] = deque()  # appended and taken without a lock (both atomic)

    def start(self, name: str, *, kind: str, parent: SpanContext | None, links: Sequence[SpanContext] = (),
              attributes: dict[str, Any] | None = None, fixed: Fixed | None = None, start_ns: int | None = None,
              service: str | None = None) -> Span:
        """``parent``: the span's parent (None: a new trace). Sampled as ParentBased(TraceIdRatioBased).
        ``attributes`` become the span's own (not copied); ``fixed``: shared ones, encoded already."""
        if parent is not None:
            trace_id, flags = parent.trace_id, parent.flags & SAMPLED
        else:
            raw = os.urandom(16)
            trace_id = raw.hex()
            flags = SAMPLED if self._always or int.from_bytes(raw[8:], "big") < self._bound else 0
        context: SpanContext = _new_tuple(SpanContext, (trace_id, _span_id(), flags, False))
        if not flags:
            return Span(context)
        return RecordedSpan(self, name, context, parent, KINDS[kind], start_ns or time.time_ns(),
                            attributes if attributes is not None else {}, fixed,
                            tuple((link, _NO_ATTRIBUTES) for link in links) if links else (),
                            service or self._service())

    def finished(self, span: RecordedSpan) -> None:
        self._finished.append(span)

    def take(self) -> list[RecordedSpan]:
        finished, taken = self._finished, []
        while finished:  # what another thread ends meanwhile is taken now or at the next flush, never lost
            taken.append(finished.popleft())
        return taken

    def flush(self) -> int:
        """Export what finished since the last flush; an export that fails is logged, never raised."""
        spans = self.take()
        if not spans or self.exporter is None:
            return 0
        try:
            self.exporter(otlp_body(spans))
        except Exception as exc:  # tracing never fails the work it observes
            log.warning("spans not exported: %s: %s", type(exc).__name__, str(exc)[:300])
        return len(spans)


# Span ids: 8 bytes each of the OS's randomness, read 64 at a time (one getrandom call instead of one per span).
# Never a seeded generator: environments restored from one SnapStart snapshot (the API functions) would make
# the same ids. Nor is anything read before the first span, which only an invocation makes: a snapshot, taken
# after init, holds no ids. Lock-free: a pool is replaced whole, and each of its slots is taken once
# (itertools.count is atomic); two threads refilling at once each take from their own pool.
_ID_BYTES, _POOL_IDS = 8, 64
_NO_ATTRIBUTES: Mapping[str, Any] = {}
_pool_ids: tuple[bytes, Any] = (b"", itertools.count())


def _span_id() -> str:
    global _pool_ids
    while True:
        pool, slots = _pool_ids
        at = next(slots) * _ID_BYTES
        if at < len(pool):
            span_id = pool[at:at + _ID_BYTES].hex()
            if span_id != _ZERO_SPAN:  # one chance in 2**64: the only invalid id
                return span_id
        else:
            _pool_ids = (os.urandom(_ID_BYTES * _POOL_IDS), itertools.count())


# --- the current span ---------------------------------------------------------------------------
_current: ContextVar[Span | None] = ContextVar("shopstream_span", default=None)


def current_span() -> Span | None:
    return _current.get()


def current_context() -> SpanContext | None:
    span = _current.get()
    return span.context if span is not None else None


class activate:  # noqa: N801 (used as a function: ``with activate(span):``)
    """The span current in this context while the block runs, ended after it; an escaping exception is
    recorded on it and marks it failed."""

    __slots__ = ("span", "_token")

    def __init__(self, span: Span):
        self.span = span

    def __enter__(self) -> Span:
        self._token = _current.set(self.span)
        return self.span

    def __exit__(self, kind: Any, error: Any, _traceback: Any) -> None:
        _current.reset(self._token)
        if error is not None and isinstance(error, Exception):
            self.span.record_exception(error)
            self.span.fail(f"{kind.__name__}: {error}")
        self.span.end()


# --- OTLP/JSON ------------------------------------------------------------------------------
# Written out rather than built as dictionaries for json.dumps (half the CPU), at flush: a span costs
# nothing to encode while the work it observes runs.
_string = json.encoder.encode_basestring_ascii  # C: a JSON string literal
_keys: dict[str, str] = {}  # key -> '{"key":"<key>","value":'
_pairs: dict[tuple[str, str], str] = {}  # encoded string attributes of keys whose values repeat (CONSTANT_KEYS)
CONSTANT_KEYS = frozenset({"messaging.system", "messaging.destination.name", "messaging.operation.type",
                           "messaging.consumer.group.name", "shopstream.handler", "shopstream.event_type",
                           "messaging.destination.partition.id", "db.system.name", "db.operation.name"})


def _value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return '{"stringValue":' + _string(value) + "}"
    if kind is int:
        return '{"intValue":"' + str(value) + '"}'
    if kind is bool:
        return '{"boolValue":' + ("true" if value else "false") + "}"
    if kind is float:
        return '{"doubleValue":' + repr(value) + "}"
    if isinstance(value, (list, tuple)):
        return '{"arrayValue":{"values":[' + ",".join(_value(v) for v in value) + "]}}"
    return '{"stringValue":' + _string(str(value)) + "}"


def _key(key: str) -> str:
    found = _keys.get(key)
    if found is None:
        found = '{"key":' + _string(key) + ',"value":'
        if len(_keys) < 1000:
            _keys[key] = found
    return found


def _attributes(attributes: Mapping[str, Any]) -> str:
    encoded: list[str] = []
    for key, value in attributes.items():
        kind = type(value)
        if kind is str:
            if key in CONSTANT_KEYS:
                pair = _pairs.get((key, value))
                if pair is None:
                    pair = _key(key) + _value(value) + "}"
                    if len(_pairs) < 10_000:
                        _pairs[(key, value)] = pair
                encoded.append(pair)
            else:
                encoded.append(f'{_keys.get(key) or _key(key)}{{"stringValue":{_string(value)}}}}}')
        elif kind is int:
            encoded.append(f'{_keys.get(key) or _key(key)}{{"intValue":"{value}"}}}}')
        elif value is not None:
            encoded.append(f"{_keys.get(key) or _key(key)}{_value(value)}}}")
    return "[" + ",".join(encoded) + "]"


def _span(span: RecordedSpan) -> str:
    context, parent, fixed = span.context, span.parent, span.fixed
    flags = (context.flags & 0xFF) | (0x300 if parent is not None and parent.remote else 0x100)
    attributes = _attributes(span.attributes) if span.attributes else "[]"
    if fixed is not None and fixed.encoded:
        attributes = f"[{fixed.encoded}{',' if len(attributes) > 2 else ''}{attributes[1:]}"
    status = f',"message":{_string(span.status_message)}' if span.status_message else ""
    encoded = (f'{{"traceId":"{context.trace_id}","spanId":"{context.span_id}","parentSpanId":"'
               f'{parent.span_id if parent is not None else ""}","flags":{flags},"name":{_string(span.name)},'
               f'"kind":{span.kind},"startTimeUnixNano":"{span.start_ns}","endTimeUnixNano":"{span.end_ns}",'
               f'"attributes":{attributes},"status":{{"code":{span.status}{status}}}')
    if span.events:
        encoded += ',"events":[' + ",".join(
            '{"name":' + _string(name) + ',"timeUnixNano":"' + str(at) + '","attributes":' + _attributes(attributes)
            + "}" for name, at, attributes in span.events) + "]"
    if span.links:
        encoded += ',"links":[' + ",".join(
            '{"traceId":"' + link.trace_id + '","spanId":"' + link.span_id + '","attributes":'
            + _attributes(attributes) + "}" for link, attributes in span.links) + "]"
    return encoded + "}"


def otlp_body(spans: Sequence[RecordedSpan]) -> bytes:
    """One ExportTraceServiceRequest in OTLP's JSON encoding, a resource per service."""
    by_service: dict[str, list[str]] = {}
    for span in spans:
        by_service.setdefault(span.service, []).append(_span(span))
    resources = (
        '{"resource":{"attributes":' + _attributes({"service.name": service, "service.namespace": "shopstream",
                                                    "telemetry.sdk.language": "python"})
        + '},"scopeSpans":[{"scope":{"name":"' + SCOPE + '"},"spans":[' + ",".join(encoded) + "]}]}"
        for service, encoded in by_service.items())
    return ('{"resourceSpans":[' + ",".join(resources) + "]}").encode()


# --- exporters ------------------------------------------------------------------------------
_pools: dict[bool, Any] = {}  # keep-alive connections, reused by every flush of this process
# X-Ray's endpoint (like every AWS endpoint) presents an Amazon Trust Services certificate: the exporter's TLS context
# trusts those roots only, read from the bundle botocore verifies with, instead of parsing the whole bundle (~150
# roots: 21 ms of CPU at the first connection on the machine of bench/results.md, 2 ms for these five). A
# verification failure falls back to the whole bundle; AWS_CA_BUNDLE, when set, is used as it is.
AMAZON_ROOTS = ("Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4",
                "Starfield Services Root Certificate Authority - G2")


def _tls_context(amazon_only: bool) -> Any:
    import ssl

    from botocore.httpsession import get_cert_path

    bundle = os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)
    if amazon_only and bundle and not os.environ.get("AWS_CA_BUNDLE"):
        with open(bundle, encoding="ascii", errors="replace") as pem:
            blocks = pem.read().split("\n\n")
        roots = "".join(block[block.index("-----BEGIN CERTIFICATE-----"):] + "\n" for block in blocks
                        if "-----BEGIN CERTIFICATE-----" in block
                        and any(f'# Label: "{label}"' in block for label in AMAZON_ROOTS))
        if roots:
            return ssl.create_default_context(cadata=roots)
    return ssl.create_default_context(cafile=bundle)


def _pool(https: bool, amazon_only: bool) -> Any:
    import urllib3  # botocore's own HTTP library: loaded already in every function

    key = https and amazon_only
    found = _pools.get(key)
    if found is None:
        found = _pools[key] = urllib3.PoolManager(
            num_pools=2, maxsize=2, **({"ssl_context": _tls_context(amazon_only)} if https else {}))
    return found


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    import urllib3

    https = url.startswith("https://")
    try:
        response = _pool(https, True).request("POST", url, body=body, headers=dict(headers), timeout=timeout,
                                              retries=False)
    except urllib3.exceptions.SSLError:
        if not https:
            raise
        log.info("%s: not verified by the Amazon Trust Services roots alone; trying the whole bundle", url)
        response = _pool(https, False).request("POST", url, body=body, headers=dict(headers), timeout=timeout,
                                               retries=False)
    if not 200 <= response.status < 300:
        raise RuntimeError(f"{url} answered {response.status}: {response.data[:200]!r}")


def http_exporter(url: str, headers: Mapping[str, str] | None = None, timeout: float = 2.0) -> Exporter:
    """OTLP/HTTP with the JSON encoding to ``url`` (the local runtime's collector, any OTLP receiver)."""
    fixed = {"Content-Type": "application/json", **(headers or {})}

    def export(body: bytes) -> None:
        _post(url, body, fixed, timeout)

    return export


def xray_endpoint(region: str) -> str:
    return f"https://xray.{region}.amazonaws.com/v1/traces"


def xray_exporter(region: str, credentials: Callable[[], Any], timeout: float = 2.0) -> Exporter:
    """OTLP/HTTP JSON to X-Ray's OTLP endpoint, signed with SigV4 (service ``xray``) with the function's
    own credentials. In the VPC it reaches the X-Ray interface endpoint (stacks/network.py)."""
    url = xray_endpoint(region)

    def export(body: bytes) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        signed = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(credentials().get_frozen_credentials(), "xray", region).add_auth(signed)
        _post(url, body, dict(signed.headers.items()), timeout)

    return export
