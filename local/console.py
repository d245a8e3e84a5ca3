"""The local web console (``make local``, http://127.0.0.1:8000/console): local only, behind a token.

Pages (one HTML page, local/console/; Mermaid from node_modules, so nothing comes from the internet):
- map: services, topics and handlers from the catalog, with the produce rate of each topic and the
  lag of each consumer group;
- dead letters: every handler's DLQ and every relay failure queue, each message decoded, with
  redrive and discard (local/ops.py's own functions: what ``make ops`` does);
- story: an order's (or a correlation id's) causal graph from the audit trail, with timings;
- analytics: the audit service's ``GET /analytics/live``, refreshed by the page.

Rates and lags come from records read, not from the broker's watermarks: Tansu's ListOffsets answers
are not record offsets (docs/decisions.md), so a reader follows every partition of every topic and
keeps the end offset and the record timestamps it saw.

Access (``ConsoleAccess``): the console reads customers' orders and redrives or discards dead letters as
an admin, so every path wants this run's console token (``Authorization: Bearer``) or a session opened
with it (``/console/login?token=...``, the address ``make local`` prints). Other processes on the
machine and web pages in its browser are kept out: the Host must be this gateway's own (a rebound DNS
name is not), a request's Origin and Sec-Fetch-Site must be this origin's, a session's state-changing
request must carry that Origin, and a POST to the API must be a JSON object sent as application/json
(which a foreign page cannot send without a preflight that nothing here answers).
"""

from __future__ import annotations

import hmac
import html
import json
import mimetypes
import os
import re
import secrets
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import Message
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from local import naming, ops, traces
from local.asyncapi_page import html_page
from local.client import partition_numbers
from local.http_events import claims_for, http_event
from shopstream import catalog

ROOT = Path(__file__).resolve().parents[1]
STATIC = Path(__file__).resolve().parent / "console"
VENDOR = {"mermaid.min.js": ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"}
RATE_SECONDS = 10  # the produce rate is averaged over this many seconds of record timestamps
Reply = tuple[int, Any, dict[str, str]]
InvokeApi = Callable[[str, dict[str, Any]], dict[str, Any]]
LOGIN_PATH = "/console/login"
API_PREFIX = "/console/api/"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")  # the gateway listens on 127.0.0.1 only
SAFE_METHODS = ("GET", "HEAD")
MAX_SESSIONS = 32  # one per login; the oldest goes first
# Never inside another page's frame, where its buttons (Redrive, Discard) could be clicked by trickery.
ALWAYS_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}


class TopicMeter:
    """Reads every partition of every catalog topic from the start: records per topic, the end offset
    of each partition, and the timestamps of the last minute's records (for the produce rate)."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.ends: dict[tuple[str, int], int] = {}
        self.records: dict[str, int] = {t.name: 0 for t in catalog.TOPICS}
        self.partitions: dict[str, int] = {}  # as the broker has them (a local runtime creates dev's)
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
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "console-meter",
                             "enable.auto.commit": False, "fetch.wait.max.ms": 200})
        numbers = {t.name: partition_numbers(consumer, t.name) for t in catalog.TOPICS}
        with self.lock:
            self.partitions = {name: len(found) for name, found in numbers.items()}
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for name, found in numbers.items() for p in found])
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


def login_url(port: int, token: str) -> str:
    return f"http://127.0.0.1:{port}{LOGIN_PATH}?token={token}"


def save_token(token: str, path: Path = naming.CONSOLE_TOKEN_FILE) -> Path:
    """For this user only (mkstemp makes it 0600), replaced whole: a reader never sees half a token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    os.replace(temporary, path)
    return path


def forget_token(token: str, path: Path = naming.CONSOLE_TOKEN_FILE) -> None:
    """At the end of the run, unless another run has written its own since."""
    try:
        if _same(path.read_text().strip(), token):
            path.unlink()
    except FileNotFoundError:
        pass


def _same_origins(port: int) -> set[str]:
    return {f"http://{name}:{port}" for name in LOOPBACK_NAMES}


def _own_hosts(port: int) -> set[str]:
    return {f"{name}:{port}" for name in LOOPBACK_NAMES} | (set(LOOPBACK_NAMES) if port == 80 else set())


def _cookies(header: str) -> dict[str, str]:
    # Not SimpleCookie: it drops the whole header when one cookie is malformed, and cookies are
    # per host, not per port, so other local apps' cookies arrive here too.
    pairs = (part.strip().partition("=") for part in header.split(";"))
    return {name.strip(): value.strip() for name, _, value in pairs if name.strip()}


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def _refused(status: int, message: str) -> Reply:
    return status, {"message": message}, {"Cache-Control": "no-store"}


class ConsoleAccess:
    """This run's console token and the sessions opened with it (in memory: they end with the run)."""

    def __init__(self, token: str | None = None):
        self.token = token or secrets.token_urlsafe(32)
        self._sessions: deque[str] = deque(maxlen=MAX_SESSIONS)
        self._lock = threading.Lock()

    @staticmethod
    def cookie_name(port: int) -> str:
        return f"shopstream_console_{port}"  # per port: two local stacks share the host's cookies

    def foreign(self, headers: Mapping[str, str], port: int) -> Reply | None:
        """The 403 for a request that does not come from this origin, on this machine."""
        if headers.get("host", "").strip().lower() not in _own_hosts(port):
            return _refused(403, f"the console answers only as 127.0.0.1:{port} or localhost:{port}")
        # none: typed, bookmarked or opened from the terminal; same-site would include any other
        # port of the same host (another local app's pages).
        if headers.get("sec-fetch-site", "same-origin").strip().lower() not in ("same-origin", "none"):
            return _refused(403, "the console answers its own pages only")
        origin = headers.get("origin")
        if origin is not None and origin.strip().lower() not in _same_origins(port):
            return _refused(403, "the console answers its own pages only")
        return None

    def login(self, token: str, port: int) -> Reply:
        if not token or not _same(token, self.token):
            return self.unauthorized(LOGIN_PATH, port, "That is not this run's console token.")
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions.append(session)
        cookie: SimpleCookie = SimpleCookie()
        name = self.cookie_name(port)
        cookie[name] = session
        cookie[name].update({"httponly": "true", "samesite": "Strict", "path": "/console"})
        # A redirect: the address with the token does not stay in the address bar.
        return 303, b"", {"Location": "/console", "Set-Cookie": cookie[name].OutputString(),
                          "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

    def authenticated(self, headers: Mapping[str, str], port: int) -> str | None:
        """How the request is authenticated: "bearer" (the token itself), "session" (a cookie), or None."""
        authorization = headers.get("authorization", "")
        if authorization.startswith("Bearer ") and _same(authorization.removeprefix("Bearer ").strip(), self.token):
            return "bearer"
        session = _cookies(headers.get("cookie", "")).get(self.cookie_name(port))
        if session:
            with self._lock:
                sessions = list(self._sessions)
            # Every one compared, each in constant time: the time taken says nothing about which matched.
            matches = [_same(session, known) for known in sessions]
            if any(matches):
                return "session"
        return None

    def unauthorized(self, path: str, port: int, why: str = "The console needs this run's token.") -> Reply:
        headers = {"WWW-Authenticate": 'Bearer realm="shopstream console"', "Cache-Control": "no-store"}
        how = (f"open the address `make local` printed when it started ({login_url(port, '...')}), or "
               f"send Authorization: Bearer <token>; the token is in .local/console-token where make local runs")
        if path.startswith(API_PREFIX):
            return 401, {"message": f"{why} To get in: {how}"}, headers
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shopstream console: sign in</title></head>
<body style="font-family: sans-serif; max-width: 48em; margin: 3em auto">
<h1>shopstream local console</h1>
<p>{html.escape(why)}</p>
<p>Open the address <code>make local</code> printed when it started
(<code>{html.escape(login_url(port, "..."))}</code>), or paste the token it wrote to
<code>.local/console-token</code> (in the directory where <code>make local</code> runs):</p>
<form method="get" action="{LOGIN_PATH}">
  <input name="token" type="password" size="48" autocomplete="off" aria-label="console token">
  <button type="submit">Open the console</button>
</form>
</body></html>
"""
        return 401, page.encode(), {**headers, "Content-Type": "text/html; charset=utf-8"}


def json_object(headers: Mapping[str, str], body: bytes | None) -> tuple[dict[str, Any] | None, Reply | None]:
    """A POST's body as a JSON object, or the 415 or 400 that refuses it."""
    content_type = Message()
    content_type["Content-Type"] = headers.get("content-type", "")  # parsed as e-mail parses it
    if (content_type.get_content_type() != "application/json"
            or content_type.get_content_charset("utf-8") not in ("utf-8", "utf8")):
        return None, _refused(415, "send the body as Content-Type: application/json (UTF-8)")
    try:
        payload = json.loads((body or b"").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, _refused(400, "the body is not JSON")
    if not isinstance(payload, dict):
        return None, _refused(400, "the body must be a JSON object")
    return payload, None


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

    def __init__(self, *, bootstrap: str, invoke_api: InvokeApi, token: str | None = None, traces: Any = None):
        self.bootstrap = bootstrap
        self.invoke_api = invoke_api
        self.traces = traces  # the runtime's span collector (local/traces.py SpanStore), if it traces
        self.access = ConsoleAccess(token)
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
                self._target = ops.Target("local")
            return self._target

    def stop(self) -> None:
        if self._meter is not None:
            self._meter.stop()

    @property
    def token(self) -> str:
        return self.access.token

    # --- HTTP -----------------------------------------------------------------------------------------
    def __call__(self, method: str, path: str, query: dict[str, str], body: bytes | None, *,
                 headers: Mapping[str, str], port: int) -> Reply:
        """``port``: the gateway's, which the Host and Origin of a request must name."""
        try:
            status, answer, extra = self._admit(method, path, query, body, {k.lower(): v for k, v in headers.items()},
                                                port)
        except Exception as exc:  # shown on the page; the console never takes the gateway down
            traceback.print_exc()
            status, answer, extra = 500, {"message": f"{type(exc).__name__}: {exc}"}, {}
        return status, answer, {**ALWAYS_HEADERS, **extra}

    def _admit(self, method: str, path: str, query: dict[str, str], body: bytes | None,
               headers: Mapping[str, str], port: int) -> Reply:
        refused = self.access.foreign(headers, port)
        if refused is not None:
            return refused
        if path == LOGIN_PATH and method == "GET":
            return self.access.login(query.get("token", ""), port)
        authenticated_by = self.access.authenticated(headers, port)
        if authenticated_by is None:
            return self.access.unauthorized(path, port)
        if authenticated_by == "session" and method not in SAFE_METHODS and "origin" not in headers:
            # A browser sends Origin with every such request; a session's without one is not from our page.
            return _refused(403, "the console answers its own pages only")
        payload: dict[str, Any] = {}
        if method == "POST" and path.startswith(API_PREFIX):
            parsed, refused = json_object(headers, body)
            if refused is not None:
                return refused
            payload = parsed or {}
        return self._route(method, path, query, payload)

    def _route(self, method: str, path: str, query: dict[str, str], payload: dict[str, Any]) -> Reply:
        if method == "GET" and path in ("/console", "/console/"):
            return self._file(STATIC / "index.html")
        if method == "GET" and path.startswith("/console/static/"):
            return self._file(STATIC / path.removeprefix("/console/static/"))
        if method == "GET" and path.startswith("/console/vendor/"):
            vendored = VENDOR.get(path.removeprefix("/console/vendor/"))
            if vendored is None or not vendored.exists():
                return 404, {"message": "not installed: run `make node` (npm ci)"}, {}
            return self._file(vendored)
        if method == "GET" and path == "/console/asyncapi":  # docs/asyncapi.yaml as a page
            return 200, html_page().encode(), {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}
        api: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "/console/api/map"): self.system_map,
            ("GET", "/console/api/dlq"): self.dead_letters,
            ("POST", "/console/api/dlq/redrive"): lambda: self.dlq_action("redrive", payload),
            ("POST", "/console/api/dlq/discard"): lambda: self.dlq_action("discard", payload),
            ("GET", "/console/api/story"): lambda: self.story(query.get("q", "").strip()),
            ("GET", "/console/api/analytics"): lambda: self.analytics(query.get("minutes", "15")),
            ("GET", "/console/api/trace"): lambda: self.trace(query.get("q", "").strip()),
            ("POST", "/console/api/traces"): lambda: self.ingest(payload),
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
        response = self.invoke_api(service, http_event("GET", path, claims=claims_for("console", admin=True),
                                                       query=query))
        return int(response["statusCode"]), json.loads(response.get("body") or "null")

    # --- pages' data ----------------------------------------------------------------------------------
    def lags(self, meter: TopicMeter) -> dict[str, int | None]:
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
            records, partitions = dict(meter.records), dict(meter.partitions)
        return {
            "generatedAt": datetime.now(UTC).isoformat(),
            "topics": [{"name": t.name, "partitions": partitions.get(t.name, t.partitions),
                        "records": records.get(t.name, 0), "ratePerSecond": rates.get(t.name, 0.0),
                        "description": t.description}
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

    # --- traces (local/traces.py) ---------------------------------------------------------------------
    def ingest(self, payload: dict[str, Any]) -> Any:
        """OTLP/JSON spans from another process of this machine (a tool running a handler: replay, redrive)."""
        if self.traces is None:
            return 404, {"message": "this runtime does not collect traces"}, {}
        return {"partialSuccess": {}, "accepted": self.traces.ingest(payload)}

    def trace(self, query: str) -> Any:
        """An order's trace (or a correlation id's, or a trace id's) as a waterfall, with the traces that
        redeliveries, redrives and replays of its records started (linked to it)."""
        if self.traces is None:
            return 404, {"message": "this runtime does not collect traces"}, {}
        if not query:
            return 422, {"message": "search by orderId, correlationId or trace id (q=...)"}, {}
        trace_id, correlation_id = None, None
        if re.fullmatch(r"[0-9a-f]{32}", query):
            trace_id = query
        else:
            response = self.invoke_api("order", http_event("GET", f"/orders/{query}",
                                                           claims=claims_for("console", admin=True)))
            if int(response["statusCode"]) == 200:
                headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
                trace_id = headers.get("x-trace-id")
                correlation_id = json.loads(response.get("body") or "{}").get("correlationId")
            found = self.traces.traces_of(correlation_id or query)
            trace_id = trace_id or (found[0] if found else None)
        spans = self.traces.trace(trace_id) if trace_id else []
        if not spans:
            return 404, {"message": f"no trace for {query!r} (yet)"}, {}
        rows = traces.timeline(traces.waterfall(spans))
        linked = self.traces.linking_to(trace_id)
        return {"query": query, "traceId": trace_id, "correlationId": correlation_id, "spans": len(spans),
                "rows": rows, "text": traces.render(rows), "hops": traces.hops(rows),
                "linked": [{"traceId": t, "rows": traces.timeline(traces.waterfall(self.traces.trace(t)))}
                           for t in linked]}

    def analytics(self, minutes: str) -> Any:
        status, body = self._api("audit", "/analytics/live", {"minutes": minutes})
        return (status, body, {}) if status != 200 else body
