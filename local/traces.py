"""The local runtime's trace collector and an order's trace as a waterfall (console, ``make ops ARGS="trace"``).

Every function of ``make local`` runs in its process and hands its spans to ``SpanStore.ingest`` as one
OTLP/JSON request per invocation (shopstream.tracing, configured by local/runtime.py); a tool's process
(replay, redrive) posts the same requests to ``/console/api/traces``. Spans are kept in memory, the most
recent ``LIMIT`` of them, indexed by trace and by correlation id.

The waterfall lays a trace out as its spans nest (each under its parent, children by start) with, between
them, the two waits no span covers: *wait in the outbox* (from the commit that wrote the event to the relay's
``publish``) and *wait in the mapping* (from the end of ``publish`` to the handler's ``process``).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

LIMIT = 200_000
_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    return None


def _attributes(entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {entry["key"]: _value(entry.get("value") or {}) for entry in entries or []}


def flatten(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The spans of an OTLP/JSON ExportTraceServiceRequest, one plain dict each."""
    spans = []
    for resource_spans in request.get("resourceSpans") or []:
        service = _attributes((resource_spans.get("resource") or {}).get("attributes")).get("service.name", "?")
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                spans.append({
                    "traceId": span["traceId"], "spanId": span["spanId"],
                    "parentSpanId": span.get("parentSpanId") or None,
                    "name": span.get("name", ""), "kind": _KINDS.get(int(span.get("kind", 1)), "internal"),
                    "service": service, "start": int(span["startTimeUnixNano"]), "end": int(span["endTimeUnixNano"]),
                    "attributes": _attributes(span.get("attributes")),
                    "events": [{"name": e.get("name"), "at": int(e.get("timeUnixNano", 0)),
                                "attributes": _attributes(e.get("attributes"))} for e in span.get("events") or []],
                    "links": [{"traceId": link["traceId"], "spanId": link["spanId"]}
                              for link in span.get("links") or []],
                    "error": int((span.get("status") or {}).get("code", 0)) == 2,
                    "statusMessage": (span.get("status") or {}).get("message")})
    return spans


class SpanStore:
    def __init__(self, limit: int = LIMIT):
        self.limit = limit
        self._traces: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._correlations: dict[str, list[str]] = {}
        self._links: dict[str, set[str]] = {}  # trace id -> the traces with a span linking into it
        self._count = 0
        self._lock = threading.Lock()

    def ingest(self, request: dict[str, Any] | bytes) -> int:
        """One ExportTraceServiceRequest (OTLP/JSON, as bytes from an exporter or parsed from a POST)."""
        spans = flatten(json.loads(request) if isinstance(request, bytes) else request)
        with self._lock:
            for span in spans:
                trace_id = span["traceId"]
                self._traces.setdefault(trace_id, []).append(span)
                self._count += 1
                correlation = span["attributes"].get("shopstream.correlation_id")
                if correlation:
                    known = self._correlations.setdefault(correlation, [])
                    if trace_id not in known:
                        known.append(trace_id)
                for link in span["links"]:
                    if link["traceId"] != trace_id:
                        self._links.setdefault(link["traceId"], set()).add(trace_id)
            while self._count > self.limit and self._traces:
                _, evicted = self._traces.popitem(last=False)
                self._count -= len(evicted)
        return len(spans)

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._traces.get(trace_id, []))

    def traces_of(self, correlation_id: str) -> list[str]:
        """The traces with a span of this correlation id, the earliest first."""
        with self._lock:
            found = [t for t in self._correlations.get(correlation_id, []) if t in self._traces]
            return sorted(found, key=lambda t: min(s["start"] for s in self._traces[t]))

    def linking_to(self, trace_id: str) -> list[str]:
        """Traces started by a redelivery, redrive or replay of a record of this trace (they link to it)."""
        with self._lock:
            return sorted(self._links.get(trace_id, set()))

    def __len__(self) -> int:
        return self._count


# --- the waterfall --------------------------------------------------------------------------------
def _ms(nanoseconds: int) -> float:
    return round(nanoseconds / 1e6, 3)


def waterfall(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in display order: each span after its parent (children by start), with a ``wait`` row before a
    ``publish`` (wait in the outbox) and before a ``process`` (wait in the mapping). Offsets and durations
    in milliseconds from the trace's first span."""
    if not spans:
        return []
    by_id = {s["spanId"]: s for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span["parentSpanId"] if span["parentSpanId"] in by_id else None
        children.setdefault(parent, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: s["start"])
    origin = min(s["start"] for s in spans)
    rows: list[dict[str, Any]] = []

    def wait_row(name: str, since: int, until: int, depth: int) -> None:
        if until > since:
            rows.append({"kind": "wait", "name": name, "service": "", "depth": depth, "startMs": _ms(since - origin),
                         "durationMs": _ms(until - since), "spanId": None, "error": False, "attributes": {}})

    def visit(span: dict[str, Any], depth: int, siblings: list[dict[str, Any]], parent: dict[str, Any] | None) -> None:
        if span["kind"] == "producer" and span["name"].startswith("publish "):
            commits = [s["end"] for s in siblings if s["name"] == "commit" and s["end"] <= span["start"]]
            if commits:
                wait_row("wait in the outbox", max(commits), span["start"], depth)
        if span["kind"] == "consumer" and parent is not None and parent["kind"] == "producer":
            wait_row("wait in the mapping", parent["end"], span["start"], depth)
        rows.append({"kind": span["kind"], "name": span["name"], "service": span["service"].removesuffix("-service"),
                     "depth": depth, "startMs": _ms(span["start"] - origin),
                     "durationMs": _ms(span["end"] - span["start"]),
                     "spanId": span["spanId"], "parentSpanId": span["parentSpanId"], "error": span["error"],
                     "attributes": _shown(span["attributes"]), "links": span["links"]})
        kids = children.get(span["spanId"], [])
        for child in kids:
            visit(child, depth + 1, kids, span)

    roots = children.get(None, [])
    for root in roots:
        visit(root, 0, roots, None)
    return rows


MIN_BAR_PCT = 0.4  # an instant still shows as a sliver


def timeline(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with their bars on the trace's time scale, as the console draws them: ``bar.left`` (the start)
    and ``bar.width`` (the duration, at least MIN_BAR_PCT) in percent of the trace, from its first span's
    start to its last span's end."""
    total = max((r["startMs"] + r["durationMs"] for r in rows), default=0.0) or 1.0
    placed = []
    for row in rows:
        left = min(max(0.0, row["startMs"] / total * 100), 100.0 - MIN_BAR_PCT)
        width = min(max(MIN_BAR_PCT, row["durationMs"] / total * 100), 100.0 - left)
        placed.append({**row, "bar": {"left": round(left, 3), "width": round(width, 3)}})
    return placed


_SHOWN = ("shopstream.handler", "shopstream.event_type", "messaging.destination.partition.id", "messaging.kafka.offset",
          "messaging.consumer.group.name", "http.response.status_code", "shopstream.redelivery",
          "shopstream.mapping.wait_ms", "shopstream.outbox.events", "messaging.message.id")


def _shown(attributes: dict[str, Any]) -> dict[str, Any]:
    return {key: attributes[key] for key in _SHOWN if key in attributes}


def hops(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Durations by hop kind (for docs/capacity.md): API, commit, outbox wait, publish, mapping wait,
    handler, provider call."""
    out: dict[str, list[float]] = {}
    for row in rows:
        key = {"server": "API request", "producer": "relay publish", "consumer": "handler",
               "client": "provider call"}.get(row["kind"], row["name"])
        out.setdefault(key, []).append(row["durationMs"])
    return out


def render(rows: list[dict[str, Any]], width: int = 40) -> list[str]:
    """The waterfall as text: offset, a bar on the trace's time scale, the span and its duration."""
    if not rows:
        return ["(no spans)"]
    total = max(r["startMs"] + r["durationMs"] for r in rows) or 1.0
    lines = []
    for row in rows:
        first = int(row["startMs"] / total * width)
        length = max(1, int(round(row["durationMs"] / total * width)))
        bar = " " * first + ("." if row["kind"] == "wait" else "#") * length
        label = row["name"] + (f" [{row['service']}]" if row["service"] else "")
        detail = row["attributes"].get("shopstream.event_type") or row["attributes"].get("shopstream.handler") or ""
        again = row["attributes"].get("shopstream.redelivery")
        flags = (" ERROR" if row["error"] else "") + (f" ({again})" if again else "")
        lines.append(f"{row['startMs']:>9.1f} ms |{bar:<{width}}| {'  ' * row['depth']}{label} "
                     f"{row['durationMs']:.1f} ms{(' ' + detail) if detail else ''}{flags}")
    return lines
