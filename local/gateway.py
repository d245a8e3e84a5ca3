"""The local API gateway: HTTP on 127.0.0.1, routes from the catalog, JWT checked, v2 proxy events."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from local import naming
from local.http_events import http_event
from local.read_cache import ReadCache
from shopstream import catalog, long_poll, tracing, transaction

Route = tuple[str, re.Pattern[str], str, bool]  # method, path pattern (a group per parameter), service, long-poll
MAX_BODY_BYTES = 1024 * 1024  # bodies are small JSON documents; API Gateway's own cap is 10 MB
# A local long-poll asks again when a commit in this process names what it waits on, and at least this often
# (writes of other processes, e.g. tools.ops, wake nobody).
LONG_POLL_RECHECK_SECONDS = 2.0
CORRELATION_HEADER = "X-Correlation-Id"  # shopstream.api's (not imported here: it loads Powertools)


class ConsoleApp(Protocol):
    """local/console.py's Console: it checks its own token, Host and Origin (``port`` is the gateway's)."""

    def __call__(self, method: str, path: str, query: dict[str, str], body: bytes | None, *,
                 headers: Mapping[str, str], port: int) -> tuple[int, Any, dict[str, str]]: ...


def compile_routes() -> list[Route]:
    routes = []
    for spec in catalog.SERVICES:
        for route in spec.routes:
            pattern = re.sub(r"\{[^/]+\}", r"([^/]+)", route.path)
            routes.append((route.method, re.compile(f"^{pattern}$"), spec.name, route.long_poll))
    return routes


def query_parameters(query: str) -> dict[str, str]:
    """As API Gateway's HTTP API passes them: a parameter given more than once, its values joined by commas."""
    joined: dict[str, str] = {}
    for name, value in parse_qsl(query):
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def header(response: dict[str, Any], name: str) -> str | None:
    return next((v for k, v in (response.get("headers") or {}).items() if k.lower() == name.lower()), None)


class Commits:
    """Wakes local long-polls: ``committed`` (a shopstream.transaction commit listener) sets the event of each
    long-poll on the committed table whose words (its path parameters, e.g. the order id) the commit names."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watching: list[tuple[str, tuple[str, ...], threading.Event]] = []

    @contextmanager
    def watching(self, table: str, words: tuple[str, ...]) -> Iterator[threading.Event]:
        entry = (table, words, threading.Event())
        with self._lock:
            self._watching.append(entry)
        try:
            yield entry[2]
        finally:
            with self._lock:
                self._watching.remove(entry)

    def committed(self, uow: Any) -> None:
        with self._lock:
            watching = [(words, event) for table, words, event in self._watching if table == uow.table_name]
        if watching:
            written = json.dumps(uow.actions, default=str)
            for words, event in watching:
                if all(word in written for word in words):
                    event.set()

    def wake_all(self) -> None:
        with self._lock:
            for _, _, event in self._watching:
                event.set()


class Gateway:
    def __init__(self, *, host: str, port: int, invoke: Callable[[str, dict[str, Any]], dict[str, Any]],
                 verify: Callable[[str], dict[str, Any]], health: Callable[[], tuple[int, dict[str, Any]]],
                 console: ConsoleApp | None = None, reads: ReadCache | None = None):
        """``reads``: GETs are answered through it (local/read_cache.py); without it every request runs its
        function."""
        self.routes = compile_routes()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A response goes out in two writes (headers, then body). With Nagle's algorithm on, the body waited
            # for the client's delayed ACK of the headers: ~40 ms added to every answer on a kept-alive connection.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                gateway.serve(self)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches the router (which answers 404 where no route has it, as API
                # Gateway does), not BaseHTTPRequestHandler's 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, *_args: Any) -> None:  # quiet; access lines are not needed locally
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256  # bursts of new connections queue instead of being refused

        self.invoke, self.verify, self.health, self.console, self.reads = invoke, verify, health, console, reads
        self.stopping = threading.Event()
        self.commits = Commits()
        # A long-poll's clock, and its pause between asks: until a commit names what it waits on, or the
        # seconds pass (tests replace them).
        self.clock: Callable[[], float] = time.monotonic
        self.pause: Callable[[threading.Event, float], object] = lambda changed, seconds: changed.wait(seconds)
        self.server = Server((host, port), Handler)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None):
        payload = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
        request.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for name, value in headers.items():
            if name.lower() != "content-length":
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        method = request.command
        # The body first: whatever the answer, the connection stays in step for the next request.
        try:
            length = int(request.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            request.close_connection = True
            return self._reply(request, 400, {"message": "Bad Request: invalid Content-Length"})
        if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
            request.close_connection = True
            return self._reply(request, 411, {"message": "Length Required"})
        if length > MAX_BODY_BYTES:
            request.close_connection = True
            return self._reply(request, 413, {"message": "Request Entity Too Large"})
        raw = request.rfile.read(length) if length else None
        if (method, url.path) == (catalog.HEALTH_ROUTE.method, catalog.HEALTH_ROUTE.path):
            status, body = self.health()
            return self._reply(request, status, body)
        if self.console is not None and (url.path == "/console" or url.path.startswith("/console/")):
            # The local console (local/console.py), before the JWT check: it has a token of its own.
            status, body, headers = self.console(method, url.path, dict(parse_qsl(url.query)), raw,
                                                 headers=dict(request.headers.items()), port=self.port)
            return self._reply(request, status, body, headers)
        match = next(((s, found, waits) for m, p, s, waits in self.routes
                      if m == method and (found := p.match(url.path))), None)
        if match is None:
            return self._reply(request, 404, {"message": "Not Found"})
        # As the JWT authorizer's identity source: the token, with or without "Bearer ".
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token:
            return self._reply(request, 401, {"message": "Unauthorized"})
        try:
            claims = self.verify(token)
        except Exception:
            return self._reply(request, 401, {"message": "Unauthorized"})
        query = query_parameters(url.query)
        event = http_event(method, url.path, claims=claims, raw_bytes=raw,
                           headers=dict(request.headers.items()), query=query or None)
        try:
            if match[2] and long_poll.WAIT_FOR_PARAMETER in query:
                response = self.long_poll(match[0], event, query, match[1].groups())
            elif method == "GET" and self.reads is not None:
                response = self.read(match[0], event, request, raw)
            else:
                response = self.invoke(match[0], event)
        except Exception:  # a function error: API Gateway answers 500 and the function logs it
            traceback.print_exc()
            return self._reply(request, 500, {"message": "Internal Server Error"})
        self._reply(request, response["statusCode"], response.get("body") or "", response.get("headers"))

    def read(self, service: str, event: dict[str, Any], request: BaseHTTPRequestHandler,
             raw: bytes | None) -> dict[str, Any]:
        """A GET through the read cache. Its key is the request as sent: path and query, body, and every header
        (the caller's token among them: one caller's answer never goes to another). An answer given again gets
        what only a run of the function would give: its own correlation id (unless the client chose one, which
        the key holds), and no traceresponse (no span served it)."""
        assert self.reads is not None
        sent = tuple(sorted((name.lower(), value) for name, value in request.headers.items()))
        response, again = self.reads.answer((request.command, request.path, raw, sent),
                                            lambda: self.invoke(service, event))
        if again:
            fresh = {} if any(name == CORRELATION_HEADER.lower() for name, _ in sent) else {
                CORRELATION_HEADER: str(uuid.uuid4())}
            headers = {name: value for name, value in (response.get("headers") or {}).items()
                       if name.lower() not in {tracing.TRACE_RESPONSE_HEADER, *(n.lower() for n in fresh)}}
            response = {**response, "headers": headers | fresh}
        return response

    def long_poll(self, service: str, event: dict[str, Any], query: dict[str, str],
                  resource: tuple[str, ...] = ()) -> dict[str, Any]:
        """A long-poll (``?waitFor=``), waited on here rather than in the function.

        On AWS the function waits, in an execution environment of its own. Here every API request runs
        under one lock, ahead of the consumers' AWS calls (local/runtime.py): a function waiting 25 s would
        hold back every other request and slow down the very saga it waits for. So the function is asked
        for the outcome now (``timeoutSeconds=0``), and asked again when a commit to its service's table
        names the ``resource`` (its path parameters), at least every LONG_POLL_RECHECK_SECONDS, until the
        outcome is not a timeout or the client's ``timeoutSeconds`` are up; its last answer is the answer
        (as on AWS: the state read at the deadline). A parameter the function would refuse is passed as
        sent (its 422). Nothing is held between asks."""
        seconds = long_poll.requested_seconds(query.get(long_poll.TIMEOUT_PARAMETER))
        if seconds is None:
            return self.invoke(service, event)
        asked = {**query, long_poll.TIMEOUT_PARAMETER: "0"}
        now = {**event, "queryStringParameters": asked, "rawQueryString": urlencode(asked),
               "headers": dict(event["headers"])}
        with self.commits.watching(naming.table(service), resource) as changed:

            def ask() -> dict[str, Any]:
                changed.clear()  # before the read: a commit after it wakes the next pause
                response = self.invoke(service, now)
                correlation = header(response, "X-Correlation-Id")
                if correlation:  # the asks after the first continue its trail (unless the client chose one)
                    now["headers"].setdefault("x-correlation-id", correlation)
                return response

            return long_poll.wait(
                ask, lambda response: self.stopping.is_set() or header(
                    response, long_poll.OUTCOME_HEADER) != "timeout", seconds=seconds, clock=self.clock,
                sleep=lambda pause: self.pause(changed, pause), pauses=itertools.repeat(LONG_POLL_RECHECK_SECONDS))

    def serve_forever(self) -> None:
        transaction.add_commit_listener(self.commits.committed)
        try:
            self.server.serve_forever(poll_interval=0.2)
        finally:
            transaction.remove_commit_listener(self.commits.committed)

    def shutdown(self) -> None:
        self.stopping.set()
        self.commits.wake_all()
        self.server.shutdown()
        self.server.server_close()
