"""The local web console (``make local``, http://127.0.0.1:8000/console): local only, no token.

Pages (one HTML page, local/console/; Mermaid from node_modules, so nothing comes from the internet):
- map: services, topics and handlers from the catalog, with the produce rate of each topic and the
  lag of each consumer group;
- dead letters: every handler's DLQ and every relay failure queue, each message decoded, with
  redrive and discard (tools/ops.py's own functions: what ``make ops`` does);
- story: an order's (or a correlation id's) causal graph from the audit trail, with timings;
- analytics: the audit service's ``GET /analytics/live``, refreshed by the page.

Rates and lags come from records read, not from the broker's watermarks: Tansu's ListOffsets answers
are not record offsets (docs/decisions.md), so a reader follows every partition of every topic and
keeps the end offset and the record timestamps it saw.
"""

from __future__ import annotations

import json
import mimetypes
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopstream import catalog

ROOT = Path(__file__).resolve().parents[1]
STATIC = Path(__file__).resolve().parent / "console"
VENDOR = {"mermaid.min.js": ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"}
RATE_SECONDS = 10  # the produce rate is averaged over this many seconds of record timestamps
Reply = tuple[int, Any, dict[str, str]]
InvokeApi = Callable[[str, dict[str, Any]], dict[str, Any]]


class TopicMeter:
    """Reads every partition of every catalog topic from the start: records per topic, the end offset
    of each partition, and the timestamps of the last minute's records (for the produce rate)."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.ends: dict[tuple[str, int], int] = {}
        self.records: dict[str, int] = {t.name: 0 for t in catalog.TOPICS}
        self.recent: dict[str, deque[float]] = {t.name: deque() for t in catalog.TOPICS}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.caught_up = threading.Event()
        self.thread = threading.Thread(target=self._run, name="console-meter", daemon=True)

    def start(self) -> TopicMeter:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "console-meter",
                             "enable.auto.commit": False, "fetch.wait.max.ms": 200})
        consumer.assign([TopicPartition(t.name, p, OFFSET_BEGINNING) for t in catalog.TOPICS
                         for p in range(t.partitions)])
        started = time.monotonic()
        try:
            while not self.stopping.is_set():
                messages = [m for m in consumer.consume(1000, 0.5) if m.error() is None]
                if not messages:
                    if time.monotonic() - started > 2:  # past the first fetches of every partition
                        self.caught_up.set()
                    continue
                with self.lock:
                    for m in messages:
                        topic = m.topic() or ""
                        self.ends[(topic, m.partition() or 0)] = (m.offset() or 0) + 1
                        self.records[topic] = self.records.get(topic, 0) + 1
                        self.recent.setdefault(topic, deque()).append(m.timestamp()[1] / 1000)
        finally:
            consumer.close()

    def rates(self, now: float | None = None) -> dict[str, float]:
        now = time.time() if now is None else now
        out = {}
        with self.lock:
            for topic, stamps in self.recent.items():
                while stamps and stamps[0] < now - 60:
                    stamps.popleft()
                out[topic] = round(sum(1 for s in stamps if s >= now - RATE_SECONDS) / RATE_SECONDS, 2)
        return out

    def end_offsets(self, topic: str) -> dict[int, int]:
        with self.lock:
            return {p: end for (t, p), end in self.ends.items() if t == topic}


def _node(prefix: str, name: str) -> str:
    return f"{prefix}_{name.replace('-', '_')}"


def map_mermaid(rates: dict[str, float], records: dict[str, int], lags: dict[str, int | None]) -> str:
    """The system as a Mermaid flowchart: service -> topic it produces -> handler's service."""
    lines = ["flowchart LR"]
    for spec in catalog.SERVICES:
        lines.append(f'  {_node("s", spec.name)}(["{spec.name}"])')
    for topic in catalog.TOPICS:
        lines.append(f'  {_node("t", topic.name)}[("{topic.name}<br/>{rates.get(topic.name, 0):g}/s · '
                     f'{records.get(topic.name, 0)} records")]')
    for spec in catalog.SERVICES:
        for topic_name in spec.produces_topics:
            lines.append(f"  {_node('s', spec.name)} --> {_node('t', topic_name)}")
    for spec in catalog.SERVICES:
        for handler in spec.handlers:
            lag = lags.get(catalog.consumer_group_id(spec.name, handler.name))
            label = f"{handler.name} · lag {lag if lag is not None else '?'}"
            lines.append(f'  {_node("t", handler.topic)} -.->|"{label}"| {_node("s", spec.name)}')
    lines.append("  classDef topic fill:#eef6ff,stroke:#4a7bd0")
    lines.append("  class " + ",".join(_node("t", t.name) for t in catalog.TOPICS) + " topic")
    return "\n".join(lines) + "\n"


def _ms(start: str, end: str) -> int:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return int((parse(end) - parse(start)).total_seconds() * 1000)


def story_mermaid(events: list[dict[str, Any]]) -> str:
    """An event per node (type, service, time since the first event), an arrow from cause to effect
    labelled with the time between them."""
    by_id = {e["eventId"]: e for e in events}
    first = min((e["timestamp"] for e in events), default="")
    lines = ["flowchart TD"]
    services = sorted({e["source"].removesuffix("-service") for e in events})
    for n, e in enumerate(events):
        service = e["source"].removesuffix("-service")
        lines.append(f'  e{n}["{e["eventType"]}<br/><small>{service} · +{_ms(first, e["timestamp"])} ms</small>"]')
        lines.append(f"  class e{n} svc_{service}")
    index = {e["eventId"]: n for n, e in enumerate(events)}
    for n, e in enumerate(events):
        cause = by_id.get(e.get("causationId") or "")
        if cause is not None:
            lines.append(f'  e{index[cause["eventId"]]} -->|"+{_ms(cause["timestamp"], e["timestamp"])} ms"| e{n}')
    palette = ["#e8f1fd", "#fdf0e0", "#e6f6ea", "#f9e6ef", "#efe9fb", "#fff8d6", "#e3f5f6", "#f0f0f0", "#fde7e4",
               "#e9f7d9"]
    for n, service in enumerate(services):
        lines.append(f"  classDef svc_{service} fill:{palette[n % len(palette)]},stroke:#555")
    return "\n".join(lines) + "\n"


class Console:
    """Answers ``/console`` and ``/console/api/...`` for the local gateway."""

    def __init__(self, *, bootstrap: str, invoke_api: InvokeApi):
        self.bootstrap = bootstrap
        self.invoke_api = invoke_api
        self._meter: TopicMeter | None = None
        self._admin: Any = None
        self._target: Any = None
        self._lock = threading.Lock()
        # Peeking at a queue receives its messages (hidden meanwhile) and releases them: one reader at a
        # time, or a redrive could miss the message a page refresh is holding.
        self._dlq_lock = threading.Lock()

    # --- lazily started pieces ----------------------------------------------------------------------
    def meter(self) -> TopicMeter:
        with self._lock:
            if self._meter is None:
                self._meter = TopicMeter(self.bootstrap).start()
                self._meter.caught_up.wait(10)
            return self._meter

    def target(self) -> Any:
        with self._lock:
            if self._target is None:
                from tools.ops import Target

                self._target = Target("local")
            return self._target

    def stop(self) -> None:
        if self._meter is not None:
            self._meter.stop()

    # --- HTTP -----------------------------------------------------------------------------------------
    def __call__(self, method: str, path: str, query: dict[str, str], body: bytes | None) -> Reply:
        try:
            return self._route(method, path, query, body)
        except Exception as exc:  # shown on the page; the console never takes the gateway down
            import traceback

            traceback.print_exc()
            return 500, {"message": f"{type(exc).__name__}: {exc}"}, {}

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes | None) -> Reply:
        if method == "GET" and path in ("/console", "/console/"):
            return self._file(STATIC / "index.html")
        if method == "GET" and path.startswith("/console/static/"):
            return self._file(STATIC / path.removeprefix("/console/static/"))
        if method == "GET" and path.startswith("/console/vendor/"):
            vendored = VENDOR.get(path.removeprefix("/console/vendor/"))
            if vendored is None or not vendored.exists():
                return 404, {"message": "not installed: run `make node` (npm ci)"}, {}
            return self._file(vendored)
        payload = json.loads(body) if body else {}
        api: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "/console/api/map"): self.system_map,
            ("GET", "/console/api/dlq"): self.dead_letters,
            ("POST", "/console/api/dlq/redrive"): lambda: self.dlq_action("redrive", payload),
            ("POST", "/console/api/dlq/discard"): lambda: self.dlq_action("discard", payload),
            ("GET", "/console/api/story"): lambda: self.story(query.get("q", "").strip()),
            ("GET", "/console/api/analytics"): lambda: self.analytics(query.get("minutes", "15")),
        }
        handler = api.get((method, path))
        if handler is None:
            return 404, {"message": "Not Found"}, {}
        result = handler()
        if isinstance(result, tuple):
            return result
        return 200, result, {"Cache-Control": "no-store"}

    @staticmethod
    def _file(path: Path) -> Reply:
        resolved = path.resolve()
        allowed = (STATIC.resolve(), *(p.parent.resolve() for p in VENDOR.values()))
        if not any(resolved.is_relative_to(a) for a in allowed) or not resolved.is_file():
            return 404, {"message": "Not Found"}, {}
        kind = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
        return 200, resolved.read_bytes(), {"Content-Type": f"{kind}; charset=utf-8" if kind.startswith(
            ("text/", "application/javascript")) else kind, "Cache-Control": "no-cache"}

    def _api(self, service: str, path: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
        from local.http_events import claims_for, http_event

        response = self.invoke_api(service, http_event("GET", path, claims=claims_for("console", admin=True),
                                                       query=query))
        return int(response["statusCode"]), json.loads(response.get("body") or "null")

    # --- pages' data ----------------------------------------------------------------------------------
    def lags(self, meter: TopicMeter) -> dict[str, int | None]:
        from confluent_kafka import ConsumerGroupTopicPartitions
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        groups = [(catalog.consumer_group_id(s.name, h.name), h.topic) for s in catalog.SERVICES for h in s.handlers]
        futures = {group: self._admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
                   for group, _ in groups}
        lags: dict[str, int | None] = {}
        for group, topic in groups:
            try:
                committed = {tp.partition: tp.offset for tp in futures[group].result(timeout=5).topic_partitions
                             if tp.topic == topic and tp.offset >= 0}
            except Exception:
                lags[group] = None
                continue
            lags[group] = sum(max(0, end - committed.get(p, 0)) for p, end in meter.end_offsets(topic).items())
        return lags

    def system_map(self) -> dict[str, Any]:
        meter = self.meter()
        rates, lags = meter.rates(), self.lags(meter)
        with meter.lock:
            records = dict(meter.records)
        return {
            "generatedAt": datetime.now(UTC).isoformat(),
            "topics": [{"name": t.name, "partitions": t.partitions, "records": records.get(t.name, 0),
                        "ratePerSecond": rates.get(t.name, 0.0), "description": t.description}
                       for t in catalog.TOPICS],
            "services": [{"name": s.name, "description": s.description, "produces": list(s.produces_topics),
                          "handlers": [{"name": h.name, "topic": h.topic, "eventTypes": list(h.event_types),
                                        "group": catalog.consumer_group_id(s.name, h.name),
                                        "lag": lags.get(catalog.consumer_group_id(s.name, h.name))}
                                       for h in s.handlers]} for s in catalog.SERVICES],
            "mermaid": map_mermaid(rates, records, lags),
        }

    def dead_letters(self) -> dict[str, Any]:
        with self._dlq_lock:
            return self._dead_letters()

    def _dead_letters(self) -> dict[str, Any]:
        from tools import ops

        target = self.target()
        sqs = target.client("sqs")
        queues = []
        for ref in ops.all_queues():
            service, _, owner = ref.partition(".")
            url = target.queue_url(service, owner)
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            depth = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"])
            queues.append({"queue": ref, "kind": "relay" if owner == ops.RELAY else "handler", "depth": depth,
                           "messages": ops.dlq_peek(target, ref) if depth else []})
        return {"generatedAt": datetime.now(UTC).isoformat(), "queues": queues}

    def dlq_action(self, action: str, payload: dict[str, Any]) -> Any:
        from tools import ops

        queue, message_id = str(payload.get("queue", "")), str(payload.get("messageId", ""))
        if queue not in ops.all_queues() or not message_id:
            return 422, {"message": "queue (one of the dead-letter queues) and messageId are required"}, {}
        lines: list[str] = []
        with self._dlq_lock:
            if action == "redrive":
                code = ops.dlq_redrive(self.target(), queue, out=lines.append, only={message_id})
            else:
                code = ops.dlq_discard(self.target(), queue, {message_id}, out=lines.append)
        return {"queue": queue, "messageId": message_id, "action": action, "ok": code == 0, "output": lines}

    def story(self, query: str) -> Any:
        from tools import ops

        if not query:
            return 422, {"message": "search by orderId or correlationId (q=...)"}, {}
        correlation_id, order = query, None
        status, trail = self._api("audit", f"/audit/{query}")
        if status != 200:
            status, order = self._api("order", f"/orders/{query}")
            if status != 200:
                return 404, {"message": f"no events with correlation id {query!r} and no order {query!r}"}, {}
            correlation_id = order["correlationId"]
            status, trail = self._api("audit", f"/audit/{correlation_id}")
            if status != 200:
                return 404, {"message": f"order {query} has no events in the audit trail yet"}, {}
        # By time; at the same millisecond, a request's events before its own audit record (both
        # are written by one commit, and which of them the trail received first is up to the mappings).
        events = sorted(trail["events"], key=lambda e: (e["timestamp"], e["eventType"] == "AuditRecorded"))
        first = min(e["timestamp"] for e in events)
        by_id = {e["eventId"]: e for e in events}
        rows = [{"eventId": e["eventId"], "eventType": e["eventType"], "service": e["source"].removesuffix("-service"),
                 "timestamp": e["timestamp"], "causationId": e.get("causationId"),
                 "sinceStartMs": _ms(first, e["timestamp"]),
                 "sinceCauseMs": _ms(by_id[e["causationId"]]["timestamp"], e["timestamp"])
                 if e.get("causationId") in by_id else None, "data": e.get("data")} for e in events]
        return {"query": query, "correlationId": correlation_id, "order": order, "events": rows,
                "mermaid": story_mermaid(events), "sequence": ops.mermaid(events),
                "spanMs": _ms(first, max(e["timestamp"] for e in events))}

    def analytics(self, minutes: str) -> Any:
        status, body = self._api("audit", "/analytics/live", {"minutes": minutes})
        return (status, body, {}) if status != 200 else body
